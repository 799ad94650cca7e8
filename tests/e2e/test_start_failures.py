"""A gateway that cannot start fails loudly, in one process or with workers: it exits non-zero within
seconds, and its last line names the cause, so a container restarts or fails visibly instead of running
"Up" with workers that die and are started again in a tight loop (issue 22: 316 restarts in 2 minutes
when the image lacked OpenTelemetry and the platform set OTEL_EXPORTER_OTLP_ENDPOINT)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import free_port

CONFIG = """
providers:
  sim: {type: simulated, ttft_ms: 20, tokens_per_s: 0}
models:
  a: {provider: sim}
"""
NO_OTEL = "no OpenTelemetry SDK"
BAD_STORE = "a store the workers cannot open"
CAUSES = {
    NO_OTEL: "RuntimeError: tracing is on (MOA_TRACING or OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry is "
    "not installed: pip install 'moa-gateway[otel]'",
    BAD_STORE: "ValueError: MOA_RESPONSES_STORE is `memory`, `none`, `sqlite:///path/to/file.db` or a Redis URL",
}


def environment(tmp_path: Path, case: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOA_", "OTEL_", "PROMETHEUS_"))}
    env["MOA_LOG_FORMAT"] = "json"
    if case == NO_OTEL:
        # As in an image without the `otel` extra: FastAPI brings the OpenTelemetry API, not the SDK.
        hidden = tmp_path / "no-otel" / "opentelemetry" / "sdk"
        hidden.mkdir(parents=True)
        (hidden / "__init__.py").write_text(
            "raise ModuleNotFoundError(\"No module named 'opentelemetry.sdk'\", name='opentelemetry.sdk')\n"
        )
        env["PYTHONPATH"] = str(tmp_path / "no-otel")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    else:
        env["MOA_RESPONSES_STORE"] = "sqlite-or-something"  # not a store URL: refused in each worker's start
    return env


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", [NO_OTEL, BAD_STORE])
def test_a_gateway_that_cannot_start_exits_non_zero_with_one_line_naming_the_cause(
    tmp_path: Path, case: str, workers: int
) -> None:
    config = tmp_path / "moa.yaml"
    config.write_text(CONFIG)
    args = ["serve", "--config", str(config), "--port", str(free_port()), "--workers", str(workers)]
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "moa_gateway.cli", *args],
        env=environment(tmp_path, case),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"still running after 30 s:\n{output[-3000:]}") from None
    took = time.monotonic() - started

    assert process.returncode == 3, output[-3000:]
    assert took < 15, f"it took {took:.1f} s to give up"
    last = output.strip().splitlines()[-1]
    if workers == 1:
        assert last.startswith(f"moa-gateway: cannot start: {CAUSES[case]}")
    else:
        event = json.loads(last)
        assert event["level"] == "error" and event["logger"] == "moa_gateway.cli.supervisor"
        assert re.match(r"worker \d+ exited with status \d before it served: ", event["message"])
        assert CAUSES[case] in event["message"] and event["message"].endswith("; stopping")
    said = [line for line in output.splitlines() if "before it served" in line or "cannot start" in line]
    assert len(said) == 1, "one line, however many workers failed"
