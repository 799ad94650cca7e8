"""`moa-gateway` as users run it: a command to its end, or `serve` as a subprocess on a free loopback port,
ready once /readyz says so."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`moa-gateway <args>` run to its end from the checkout's root, with `env` over this process's
    environment; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "moa_gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's choice), for a process to bind next."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """`moa-gateway serve --config <config> --port <port>` with `env` over this process's environment;
    its stdout and stderr together, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "moa_gateway.cli", "serve", "--config", str(config), "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    """Wait until the gateway at `url` answers /readyz with 200; fails with its output if it exits first,
    or after 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the gateway did not become ready in 30 s")
