"""`moa-gateway serve`: load the config, refuse an open unauthenticated listener, serve until a signal,
draining first; in one process, or in `--workers N` processes on one port (app/moa_gateway/cli/workers.py)."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from moa_gateway.cli.demo import demo_config_path
from moa_gateway.cli.start_errors import STARTUP_FAILURE, ErrorNote, summary
from moa_gateway.cli.workers import serve_workers, worker_count
from moa_gateway.config import ConfigError, GatewayConfig, load_config
from moa_gateway.settings import Settings
from moa_gateway.telemetry.logs import configure_logging

logger = logging.getLogger(__name__)
GC_GEN0_THRESHOLD = 100_000


def run(args: argparse.Namespace) -> int:
    config_path = str(demo_config_path()) if args.demo else args.config
    given = {"config": config_path, "host": args.host, "port": args.port, "workers": args.workers}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v}
    try:
        settings = Settings(**overrides)
    except ValueError as exc:
        print(f"moa-gateway: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.max_log_value_chars)
    try:
        config = load_config(settings.config)
    except ConfigError as exc:
        print(f"moa-gateway: {exc}", file=sys.stderr)
        return 2
    has_keys = bool(settings.api_key_digests() or config.auth.api_key_sha256)
    if not has_keys and not settings.allow_unauthenticated and not _is_loopback(settings.host):
        print(
            f"moa-gateway: refusing to listen on {settings.host} with no gateway keys: set MOA_API_KEYS "
            "(or auth.api_key_sha256 in the config), or MOA_ALLOW_UNAUTHENTICATED=true",
            file=sys.stderr,
        )
        return 2
    workers = worker_count(settings.workers)
    if workers > 1 and settings.responses_store.get_secret_value() == "memory":
        logger.warning(
            "%d workers each keep their own stored /v1/responses (MOA_RESPONSES_STORE=memory): a "
            "previous_response_id reaches another worker about %d times in %d; share a store: "
            "MOA_RESPONSES_STORE=sqlite:///path/to/file.db (this host) or redis://... (several hosts)",
            workers,
            workers - 1,
            workers,
        )
    if workers > 1:
        # Each worker loads the same settings and config again: what was checked here holds there.
        return serve_workers({**overrides, "workers": 1}, settings, workers)
    return _serve_one(settings, config)


def _serve_one(settings: Settings, config: GatewayConfig) -> int:
    """Serve in this process; if it cannot start, one line says why (uvicorn logs a failed lifespan or
    bind and exits: the cause is noted from its log) and the exit status is STARTUP_FAILURE."""
    note = ErrorNote.install()
    serving = False

    def on_serving() -> None:
        nonlocal serving
        serving = True
        logging.getLogger().removeHandler(note)

    try:
        serve_app(settings, config, on_serving=on_serving)
    except (Exception, SystemExit) as exc:
        if serving:
            raise
        cause = note.text if isinstance(exc, SystemExit) else summary(exc)
        logger.debug("cannot start", exc_info=True)
        print(f"moa-gateway: cannot start: {cause or 'see the log above'}", file=sys.stderr)
        return STARTUP_FAILURE
    return 0


def serve_app(
    settings: Settings,
    config: GatewayConfig,
    sockets: list[socket.socket] | None = None,
    on_serving: Callable[[], None] | None = None,
) -> None:
    """Serve the gateway in this process until a signal (on `sockets` when a supervisor bound them),
    calling `on_serving` once it listens. A server that never started exits with STARTUP_FAILURE."""
    from moa_gateway.main import create_app
    from moa_gateway.server import uvicorn_config

    app = create_app(settings, config)
    server = _DrainingServer(app, uvicorn_config(app, settings), on_serving)
    # A MoA request allocates thousands of short-lived objects (chunks, deltas, events, records): with
    # gen-0 collections every 700 allocations, the collector ran ~10x per request. Start-up objects are
    # frozen out of every collection. Measured: +10-15% streamed MoA req/s at c=64. With hundreds of
    # requests in flight most young objects are still alive at a collection, so each is scanned again
    # and again: at 20,000 the collector took ~25% of the CPU at c=500 with 1.5 s upstreams, at 100,000
    # under 5% (2.22 -> 1.87 CPU ms per request; docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
    server.run(sockets=sockets)
    if not server.started:  # uvicorn 0.54 exits itself; older ones return
        sys.exit(STARTUP_FAILURE)


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, mark the app draining (503 to new requests, /readyz 503) before uvicorn stops
    accepting and gives in-flight requests `timeout_graceful_shutdown` to finish. Once it listens, it
    calls `on_serving` (a worker tells its supervisor it served)."""

    def __init__(self, app: FastAPI, config: uvicorn.Config, on_serving: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._app = app
        self._on_serving = on_serving

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_serving is not None:
            self._on_serving()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.state.lifecycle.draining = True
        super().handle_exit(sig, frame)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
