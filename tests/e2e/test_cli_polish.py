"""The CLI says what it does: `simulate` where it listens and each request it serves, `hash-key --help`
where the key comes from, `check-config` its counts in words that agree with them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.cli import free_port, run_cli


def test_simulate_says_where_it_listens_and_logs_each_request() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moa_gateway.cli", "simulate", "--port", str(port), "--ttft-ms", "0"],
        env={**os.environ, "MOA_LOG_FORMAT": "text"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "the simulator did not start"
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        body = {"model": "sim-alpha", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={}).status_code == 400
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)

    assert f"serving on http://127.0.0.1:{port}/v1 (no key)" in output
    assert re.search(r"POST /v1/chat/completions 200 \d+\.\d ms", output), output
    assert re.search(r"POST /v1/chat/completions 400 \d+\.\d ms", output), output


def test_hash_key_help_says_it_reads_the_key_from_stdin() -> None:
    result = run_cli("hash-key", "--help")

    assert result.returncode == 0
    assert "read from stdin" in " ".join(result.stdout.split())


def test_check_config_counts_in_the_singular_and_the_plural(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(
        "providers: {sim: {type: simulated}}\n"
        "models: {a: {provider: sim}, b: {provider: sim}}\n"
        "pipelines: {p: {layers: [{proposers: [a]}], aggregator: b}}\n"
    )

    result = run_cli("check-config", str(path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: ok (1 provider, 2 models, 1 pipeline: p)"
