"""Running the Node clients of tests/e2e/clients (`npm ci` by `make clients`) with no way off the machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

CLIENTS = Path(__file__).resolve().parent.parent / "e2e" / "clients"
NODE_MODULES = CLIENTS / "node_modules"  # `npm ci` by `make clients` (`make test` runs it)
# No proxy for loopback, and a dead one for anything else: a client that tried to reach the internet
# (OpenAI, an update check) would fail here rather than leave the machine.
CLIENT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "NO_PROXY": "127.0.0.1,localhost",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


def run_node(script: str, *args: str, timeout_s: float = 60) -> Any:
    """Runs a Node script of tests/e2e/clients and returns the JSON it prints on its last line."""
    assert NODE_MODULES.is_dir(), "the Node clients are not installed: run `make clients`"
    done = subprocess.run(
        ["node", str(CLIENTS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**CLIENT_ENV, "HOME": str(CLIENTS)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
