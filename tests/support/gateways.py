"""The gateway factory: the real app (`create_app`) served on a free loopback port, as e2e tests, their
fixtures and benches start it."""

from __future__ import annotations

from typing import Any

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from moa_gateway.telemetry.tracing import Tracing
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
