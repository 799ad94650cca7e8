"""`moa-gateway serve --workers 2` as users start it: one port, two worker processes, one set of metrics,
and a SIGTERM that drains every worker."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_serve import free_port, wait_ready

CONFIG = """
providers:
  sim: {type: simulated, ttft_ms: 40, tokens_per_s: 0}
  slow_sim: {type: simulated, ttft_ms: 1500, tokens_per_s: 0}
models:
  a: {provider: sim}
  b: {provider: sim}
  agg: {provider: sim}
  slow: {provider: slow_sim}
pipelines:
  duo:
    layers: [{proposers: [a, b]}]
    aggregator: agg
"""
CHAT = "/v1/chat/completions"
REQUESTS = 32


class Gateway:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def chat(self, model: str) -> httpx.Response:
        """One completion on a connection of its own, so the kernel may hand it to either worker."""
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return httpx.post(self.url + CHAT, json=body, timeout=30)

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> list[dict[str, object]]:
        """SIGTERM, wait for the exit, and the JSON log lines."""
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG)
    port = free_port()
    # Admission is per worker: 3 each, so 6 requests in flight are 3 on each worker.
    env = {**os.environ, "MOA_LOG_FORMAT": "json", "MOA_SHUTDOWN_GRACE_S": "10"}
    env["MOA_MAX_CONCURRENT_REQUESTS"] = "3"
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    args = [sys.executable, "-m", "moa_gateway.cli", "serve", "--config", str(config), "--port", str(port)]
    process = subprocess.Popen(
        [*args, "--workers", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Gateway(process, url)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


def worker_pids(metrics: str) -> set[int]:
    """The workers /metrics reports, by the `pid` label each worker's circuit states carry."""
    return {int(pid) for pid in re.findall(r'^moa_circuit_state\{model="a",pid="(\d+)"\}', metrics, re.M)}


def test_requests_spread_over_both_workers_and_metrics_count_them_all(gateway: Gateway) -> None:
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: gateway.chat("duo"), range(REQUESTS))]
    scrapes = [gateway.metrics() for _ in range(8)]  # each on a new connection: either worker answers
    events = gateway.stop()

    assert statuses == [200] * REQUESTS
    served_by = {e["pid"] for e in events if e.get("event") == "request"}
    assert len(served_by) == 2, "both workers served requests"
    for text in scrapes:
        assert sample(text, 'moa_requests_total{model="duo",status="200"}') == REQUESTS
        assert sample(text, 'moa_upstream_request_duration_seconds_count{model="a",outcome="ok",provider="sim",role="proposer"}') == REQUESTS  # fmt: skip
        assert sample(text, "moa_requests_in_flight") == 0
        assert worker_pids(text) == served_by, "circuit states are per worker, labelled by pid"


def admitted(gateway: Gateway, model: str) -> httpx.Response:
    """A completion, sent again on a new connection while a full worker refuses it (429)."""
    while (response := gateway.chat(model)).status_code == 429:
        time.sleep(0.02)
    return response


def test_sigterm_drains_every_worker_then_exits(gateway: Gateway) -> None:
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(admitted, gateway, "slow") for _ in range(6)]
        deadline = time.monotonic() + 5
        while sample(gateway.metrics(), "moa_requests_in_flight") < 6:  # the sum over both workers
            assert time.monotonic() < deadline, "six requests in flight"
            time.sleep(0.05)
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no worker accepts any more
            gateway.chat("duo")
        statuses = [future.result().status_code for future in slow]
    output, _ = gateway.process.communicate(timeout=20)

    assert statuses == [200] * 6, "requests in flight on every worker finish"
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    served = [e for e in events if e.get("event") == "request" and e["status"] == 200]
    assert len({e["pid"] for e in served}) == 2, "3 requests in flight on each worker (admission: 3)"
    finished = [e for e in events if str(e.get("message", "")).startswith("Finished server process")]
    assert len(finished) == 2, "both workers shut down gracefully"
    assert gateway.process.returncode == -signal.SIGTERM


def test_a_worker_that_dies_is_replaced(gateway: Gateway) -> None:
    before = worker_pids(gateway.metrics())
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        try:
            now = worker_pids(gateway.metrics())
        except httpx.TransportError:
            now = set()
        if len(now) == 2 and victim not in now:
            break
        assert time.monotonic() < deadline, f"a new worker replaces {victim}: {now}"
        time.sleep(0.2)

    assert all(gateway.chat("duo").status_code == 200 for _ in range(4))
    gateway.stop()
    assert gateway.process.returncode == -signal.SIGTERM
