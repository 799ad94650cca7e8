"""The client suites' gateway: in front of a recording simulator, with the usual pipelines, `reasoning`
(a 1-layer pipeline whose aggregator reasons) and the `reasoner` alias; and how to run a Node client."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moa_gateway.settings import Settings
from tests.support.configs import PROPOSERS, SIM_KEY, topology
from tests.support.gateways import serve_gateway
from tests.support.recording import Recorder
from tests.support.servers import ServerThread


@dataclass
class Gateway:
    url: str
    recorder: Recorder

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def clients_config(upstream_url: str) -> dict[str, Any]:
    reasoner = {"provider": "remote", "params": {"simulate": {"reasoning": True}}}
    data = topology("remote", extra_models={"reasoner": reasoner})
    data["pipelines"]["reasoning"] = {"layers": [{"proposers": PROPOSERS}], "aggregator": "reasoner"}
    data["providers"] = {
        "remote": {"type": "openai", "base_url": upstream_url, "api_key": SIM_KEY, "timeout_s": 10}
    }
    return data


def serve(upstream: tuple[str, Recorder], settings: Settings) -> ServerThread:
    """A gateway with `settings` in front of `upstream` (its URL and recorder)."""
    upstream_url, _ = upstream
    return serve_gateway(clients_config(upstream_url), settings)


HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"  # `npm ci` by `make clients` (`make test` runs it)
# No proxy for loopback, and a dead one for anything else: a client that tried to reach the internet
# (OpenAI, an update check) would fail here rather than leave the machine.
CLIENT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "NO_PROXY": "127.0.0.1,localhost",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


def run_node(script: str, *args: str, timeout_s: float = 60) -> Any:
    """Runs a Node script of this folder and returns the JSON it prints on its last line."""
    assert NODE_MODULES.is_dir(), "the Node clients are not installed: run `make clients`"
    done = subprocess.run(
        ["node", str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**CLIENT_ENV, "HOME": str(HERE)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
