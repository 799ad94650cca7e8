"""The client suites' gateway: in front of a recording simulator, with the usual pipelines, `reasoning`
(a 1-layer pipeline whose aggregator reasons) and the `reasoner` alias; and how to run a Node client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moa_gateway.config import parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.support.configs import PROPOSERS, SIM_KEY, topology
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
    return ServerThread(create_app(settings, parse_config(clients_config(upstream_url), "clients")))
