"""`moa-gateway serve` as users start it: a subprocess, a YAML file, keys from the environment."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.cli import free_port, serve, wait_ready
from tests.support.configs import SIM_KEY
from tests.support.servers import ServerThread

CONFIG = """
providers:
  remote:
    type: openai
    base_url: {url}/v1
    api_key: ${{SIM_TEST_KEY}}
models:
  a: {{provider: remote}}
  b: {{provider: remote, name: upstream-b}}
  agg: {{provider: remote}}
pipelines:
  duo:
    layers: [{{proposers: [a, b]}}]
    aggregator: agg
"""


def test_serve_answers_through_a_yaml_config_and_stops_on_sigterm(
    sim_server: ServerThread, tmp_path: Path
) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG.format(url=sim_server.url))
    port = free_port()
    process = serve(config, port, {"SIM_TEST_KEY": SIM_KEY, "MOA_LOG_FORMAT": "json"})
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0) as client:
            completion = client.chat.completions.create(
                model="duo",
                messages=[{"role": "user", "content": "Hi"}],
                extra_headers={"x-request-id": "cli-1"},
            )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)

    content = completion.choices[0].message.content or ""
    assert content.startswith("[agg] Synthesis of 2 responses")
    assert "(2) upstream-b: " in content, "the upstream model name, not the alias, is sent upstream"
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it
    assert "Application shutdown complete" in output
    assert process.returncode == -signal.SIGTERM
    assert SIM_KEY not in output, "the upstream key never reaches the logs"
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    mine = [e for e in events if e.get("request_id") == "cli-1"]
    calls = [e for e in mine if e.get("event") == "upstream_call"]
    assert sorted((e["model"], e["role"], e["outcome"]) for e in calls) == [
        ("a", "proposer", "ok"),
        ("agg", "aggregator", "ok"),
        ("b", "proposer", "ok"),
    ]
    assert all(e["latency_ms"] > 0 and e["completion_tokens"] > 0 for e in calls)
    (request,) = [e for e in mine if e.get("event") == "request"]
    assert request["model"] == "duo" and request["status"] == 200 and request["upstream_calls"] == 3
    assert request["cost_usd"] == 0, "these models have no price"
    assert "Hi" not in [v for e in mine for v in e.values()], "prompts are never logged"


def test_serve_refuses_a_worker_count_that_is_not_one_or_more(tmp_path: Path) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9"))

    process = serve(config, free_port(), {"SIM_TEST_KEY": "k", "WEB_CONCURRENCY": "0"})
    output, _ = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "workers is `auto` or at least 1" in output


def test_serve_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG.format(url="http://127.0.0.1:9"))

    process = serve(config, free_port(), {})  # SIM_TEST_KEY is not set
    output, _ = process.communicate(timeout=30)

    assert process.returncode == 2
    assert f"{config}: providers.remote.api_key: environment variable SIM_TEST_KEY is not set" in output


SLOW = """
providers:
  sim: {type: simulated, ttft_ms: 1500, tokens_per_s: 0}
models:
  slow: {provider: sim}
"""


def test_sigterm_lets_the_request_in_flight_finish_and_refuses_new_connections(tmp_path: Path) -> None:
    config = tmp_path / "slow.yaml"
    config.write_text(SLOW)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = serve(config, port, {"MOA_SHUTDOWN_GRACE_S": "10"})
    try:
        wait_ready(url, process)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}]}
            in_flight = pool.submit(httpx.post, f"{url}/v1/chat/completions", json=body, timeout=20)
            deadline = time.monotonic() + 10
            while 'moa_requests_in_flight{endpoint="chat"} 1.0' not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline, "the request never started"
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            response = in_flight.result(timeout=20)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()

    assert response.status_code == 200, "the request in flight at SIGTERM was answered"
    assert response.json()["choices"][0]["message"]["content"].startswith("[slow]")
    assert "Application shutdown complete" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_serve_refuses_a_public_address_without_gateway_keys(tmp_path: Path) -> None:
    config = tmp_path / "slow.yaml"
    config.write_text(SLOW)

    process = subprocess.Popen(
        [sys.executable, "-m", "moa_gateway.cli", "serve", "--config", str(config), "--host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MOA_")},
    )
    output, _ = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no gateway keys" in output
