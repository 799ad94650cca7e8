"""The gateway factory: the real app (`create_app`) served on a free loopback port, as e2e tests, their
fixtures and benches start it; and a gateway in front of a recording simulator, to see what it sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from moa_gateway.telemetry.tracing import Tracing
from tests.support.configs import PROPOSERS, SIM_KEY
from tests.support.recording import Recorder
from tests.support.servers import ServerThread


def serve_gateway(
    config: GatewayConfig | dict[str, Any],
    settings: Settings | None = None,
    *,
    production_server: bool = False,
    tracing: Tracing | None = None,
) -> ServerThread:
    """`with serve_gateway(config) as server:` serves the gateway for `config` (parsed here when a dict)
    with `settings` (the defaults if none) at `server.url`. With `production_server`, through the
    production uvicorn setup (its protocol limits, timeouts and keep-alive), else a plain uvicorn."""
    settings = settings or Settings()
    parsed = config if isinstance(config, GatewayConfig) else parse_config(config, "test")
    app = create_app(settings, parsed, tracing=tracing)
    return ServerThread(app, settings=settings if production_server else None)


@dataclass
class Gateway:
    """A gateway at `url` in front of a recording upstream: what each model was sent is in `recorder`."""

    url: str
    recorder: Recorder

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def proposer_bodies(self) -> list[dict[str, Any]]:
        """The bodies the proposers alpha, beta and gamma were sent, proposer by proposer."""
        return [body for model in PROPOSERS for body in self.recorder.sent_to(model)]


@contextmanager
def recording_upstream() -> Iterator[tuple[str, Recorder]]:
    """The simulator (SIM_KEY, 1 ms to first token, unpaced) behind a Recorder: its `/v1` URL, the recorder."""
    recorder = Recorder(create_sim_app(SimProfile(ttft_ms=1, tokens_per_s=0), api_key=SIM_KEY))
    with ServerThread(recorder) as server:
        yield f"{server.url}/v1", recorder
