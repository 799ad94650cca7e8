"""`moa-gateway serve --workers 2` as users start it: one port, two worker processes, one set of metrics,
and a SIGTERM that drains every worker."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from moa_gateway.cli.supervisor import CRASH_LOOP_DEATHS
from tests.support.cli import free_port, wait_ready
from tests.support.metrics import Scrape

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
    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def chat(self, model: str) -> httpx.Response:
        """One completion on a connection of its own, so the kernel may hand it to either worker."""
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return httpx.post(self.url + CHAT, json=body, timeout=30)

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> list[dict[str, object]]:
        """SIGTERM, wait for the exit, and the JSON log lines."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return self.events()

    def output(self) -> str:
        """What the supervisor and its workers wrote (to a file: a pipe nobody reads fills up and blocks
        the workers' logging)."""
        return self.log.read_text()

    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


@contextlib.contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[Gateway]:
    """`serve --workers 2` in a subprocess, ready, killed at the end if still running."""
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG)
    port = free_port()
    # Admission is per worker: 3 each, so 6 requests in flight are 3 on each worker.
    environ = {**os.environ, "MOA_LOG_FORMAT": "json", "MOA_SHUTDOWN_GRACE_S": "10"}
    environ["MOA_MAX_CONCURRENT_REQUESTS"] = "3"
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.update(env)
    args = [sys.executable, "-m", "moa_gateway.cli", "serve", "--config", str(config), "--port", str(port)]
    log = tmp_path / "gateway.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*args, "--workers", "2"],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own: a failed test kills the workers too
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield Gateway(process, url, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with serving(tmp_path) as started:
        yield started


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


def worker_pids(metrics: str) -> set[int]:
    """The workers /metrics reports, by the `pid` label each worker's circuit states carry."""
    pattern = r'^moa_circuit_state\{model="a",pid="(\d+)",state="closed"\}'
    return {int(pid) for pid in re.findall(pattern, metrics, re.M)}


def test_requests_spread_over_both_workers_and_metrics_count_them_all(gateway: Gateway) -> None:
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        statuses = [r.status_code for r in pool.map(lambda _: gateway.chat("duo"), range(REQUESTS))]
    scrapes = [gateway.metrics() for _ in range(8)]  # each on a new connection: either worker answers
    events = gateway.stop()

    assert statuses == [200] * REQUESTS
    served_by = {e["pid"] for e in events if e.get("event") == "request"}
    assert len(served_by) == 2, "both workers served requests"
    for text in scrapes:
        assert sample(text, 'moa_requests_total{endpoint="chat",model="duo",status="200"}') == REQUESTS
        assert sample(text, 'moa_upstream_request_duration_seconds_count{model="a",outcome="ok",provider="sim",role="proposer"}') == REQUESTS  # fmt: skip
        assert sample(text, 'moa_requests_in_flight{endpoint="chat"}') == 0
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
        while (
            sample(gateway.metrics(), 'moa_requests_in_flight{endpoint="chat"}') < 6
        ):  # the sum over both workers
            assert time.monotonic() < deadline, "six requests in flight"
            time.sleep(0.05)
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no worker accepts any more
            gateway.chat("duo")
        statuses = [future.result().status_code for future in slow]
    gateway.process.wait(timeout=20)

    assert statuses == [200] * 6, "requests in flight on every worker finish"
    events = gateway.events()
    served = [e for e in events if e.get("event") == "request" and e["status"] == 200]
    assert len({e["pid"] for e in served}) == 2, "3 requests in flight on each worker (admission: 3)"
    finished = [e for e in events if str(e.get("message", "")).startswith("Finished server process")]
    assert len(finished) == 2, "both workers shut down gracefully"
    assert gateway.process.returncode == -signal.SIGTERM


def kill_and_wait_for_replacement(gateway: Gateway, victim: int) -> set[int]:
    """SIGKILL one worker; the two workers once another has replaced it and serves."""
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            now = worker_pids(gateway.metrics())
        except httpx.TransportError:
            now = set()
        if len(now) == 2 and victim not in now:
            return now
        assert time.monotonic() < deadline, f"a new worker replaces {victim}: {now}"
        time.sleep(0.2)


def per_worker(metrics: str, name: str) -> dict[int, float]:
    return {int(s.labels["pid"]): s.value for s in Scrape(metrics).samples if s.name == name}


def metrics_of_both_workers(gateway: Gateway) -> str:
    """/metrics once both workers report: /readyz answers as soon as one is up, and on a loaded machine
    the second may start a few seconds later."""
    deadline = time.monotonic() + 30
    while len(worker_pids(text := gateway.metrics())) < 2:
        assert time.monotonic() < deadline, "both workers start"
        time.sleep(0.2)
    return text


def test_process_metrics_are_each_live_workers_and_build_info_is_one_series(gateway: Gateway) -> None:
    first = metrics_of_both_workers(gateway)
    pids = worker_pids(first)
    victim = min(pids)
    replaced = kill_and_wait_for_replacement(gateway, victim)
    later = gateway.metrics()

    assert len(pids) == 2
    rss = per_worker(first, "process_resident_memory_bytes")
    assert set(rss) == pids and all(value > 10_000_000 for value in rss.values()), "each worker's own"
    assert set(per_worker(first, "process_cpu_seconds_total")) == pids
    assert set(per_worker(later, "process_resident_memory_bytes")) == replaced, "the dead worker's are gone"
    for text in (first, later):
        samples = Scrape(text).samples
        [python] = [s for s in samples if s.name == "python_info"]
        [build] = [s for s in samples if s.name == "moa_build_info"]
        assert python.labels["version"] == build.labels["python_version"] == platform.python_version()
        assert build.labels["version"] == version("moa-gateway") and build.value == 1


def test_a_worker_that_dies_is_replaced(gateway: Gateway) -> None:
    victim = min(worker_pids(gateway.metrics()))
    kill_and_wait_for_replacement(gateway, victim)

    assert all(gateway.chat("duo").status_code == 200 for _ in range(4))
    gateway.stop()
    assert gateway.process.returncode == -signal.SIGTERM


GAUGES = ("moa_requests_in_flight", "moa_upstream_connections_in_use", "moa_circuit_state")


def totals(metrics: str) -> dict[str, float]:
    """Every counter and histogram sample on /metrics (gauges are per live worker)."""
    found = re.findall(r"^(moa_\S+) (\S+)$", metrics, re.MULTILINE)
    return {name: float(value) for name, value in found if not name.startswith(GAUGES)}


def test_a_dead_workers_metric_files_are_folded_into_the_archive_and_its_totals_stay(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "metrics"
    with serving(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory)) as gateway:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            assert all(r.status_code == 200 for r in pool.map(lambda _: gateway.chat("duo"), range(REQUESTS)))
        before = totals(gateway.metrics())
        first, second = sorted(worker_pids(gateway.metrics()))
        files_before = {f.name for f in directory.glob("*.db")}

        kill_and_wait_for_replacement(gateway, first)
        after_one = [totals(gateway.metrics()) for _ in range(4)]  # either worker answers each
        live = kill_and_wait_for_replacement(gateway, second)
        after_both = [totals(gateway.metrics()) for _ in range(4)]
        assert all(gateway.chat("duo").status_code == 200 for _ in range(4))
        later = totals(gateway.metrics())
        files = {f.name for f in directory.glob("*.db")}
        gateway.stop()

    dead = {f"{kind}_{pid}.db" for kind in ("counter", "histogram") for pid in (first, second)}
    assert dead <= files_before, "each worker wrote its counters and histograms to files of its own"
    pids = {int(pid) for pid in re.findall(r"_(\d+)\.db$", "\n".join(files), re.MULTILINE)}
    assert pids <= live, f"the dead workers' files are gone: {sorted(files)}"
    assert {"counter_archive.db", "histogram_archive.db"} <= files
    assert before['moa_requests_total{endpoint="chat",model="duo",status="200"}'] == REQUESTS
    for seen in [*after_one, *after_both]:
        assert seen == pytest.approx(before), "no total goes backwards when a worker dies"
    assert later['moa_requests_total{endpoint="chat",model="duo",status="200"}'] == REQUESTS + 4


def test_workers_that_keep_dying_after_serving_are_restarted_with_backoff_then_stop_the_supervisor(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as gateway:
        live = worker_pids(gateway.metrics())
        for _ in range(CRASH_LOOP_DEATHS - 1):  # each replaced, once its replacement serves
            live = kill_and_wait_for_replacement(gateway, min(live))
        os.kill(min(live), signal.SIGKILL)
        gateway.process.wait(timeout=30)
        events = gateway.events()

    assert gateway.process.returncode == 1
    restarts = [re.search(r"starting another in (\S+) s$", str(e["message"])) for e in events]
    assert [m.group(1) for m in restarts if m] == ["0.5", "1", "2", "4"], "the backoff doubles"
    last = events[-1]
    assert last["level"] == "error", "the reason is the log's last line"
    assert re.fullmatch(
        r"worker \d+ was killed by SIGKILL; 5 workers died within 60 s: stopping.*", str(last["message"])
    )
