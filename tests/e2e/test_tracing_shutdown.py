"""Tracing with the collector down, as a platform that injects `OTEL_EXPORTER_OTLP_ENDPOINT` leaves it
when the collector is gone: requests are served as usual, and SIGTERM still stops the gateway promptly
(the final flush gives up after its bound instead of retrying for the exporter's 10 s timeout, twice)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import openai

from tests.support.cli import free_port, serve, wait_ready

CONFIG = """
providers:
  sim: {type: simulated, ttft_ms: 20, tokens_per_s: 0}
models:
  a: {provider: sim}
  b: {provider: sim}
  agg: {provider: sim}
pipelines:
  duo:
    layers: [{proposers: [a, b]}]
    aggregator: agg
"""


def ask(client: openai.OpenAI) -> str:
    answer = client.chat.completions.create(model="duo", messages=[{"role": "user", "content": "Hi"}])
    return answer.choices[0].message.content or ""


def test_a_dead_collector_neither_fails_requests_nor_holds_up_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG)
    port = free_port()
    collector = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every export is refused
    # Batches leave every 0.2 s (5 s by default): the first request's spans are being exported, and
    # retried, when the next two requests end and SIGTERM comes, as on a gateway serving steadily.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector, "MOA_TRACING": "auto", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    process = serve(config, port, env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0) as client:
            answers = [ask(client)]
            time.sleep(0.5)
            answers += [ask(client), ask(client)]
        process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        output, _ = process.communicate(timeout=30)
        took = time.monotonic() - stopping
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert all(a.startswith("[agg] Synthesis") for a in answers), "a dead collector fails no request"
    assert "Application shutdown complete" in output
    assert process.returncode == -signal.SIGTERM
    assert took < 5, f"SIGTERM took {took:.1f} s with the collector down (the flush is bounded to 2 s)"
    assert "dropped" in output and "collector" in output, "the log says the last spans were dropped"
