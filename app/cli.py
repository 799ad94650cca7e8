"""`moa-gateway serve | check-config | simulate`."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import ipaddress
import os
import sys
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from app.config import ConfigError, load_config
from app.logs import configure_logging
from app.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"config": args.config, "host": args.host, "port": args.port}.items() if v}
    if os.environ.get("WEB_CONCURRENCY", "1") != "1":
        # Metrics, limits and circuit breakers live in the process: scale with replicas instead.
        print("moa-gateway: runs one worker per process; scale with more replicas", file=sys.stderr)
        return 2
    settings = Settings(**overrides)
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
    from app.main import create_app
    from app.server import uvicorn_config

    app = create_app(settings, config)
    server = _DrainingServer(app, uvicorn_config(app, settings))
    server.run()
    return 0


class _DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, mark the app draining (503 to new requests, /readyz 503) before uvicorn stops
    accepting and gives in-flight requests `timeout_graceful_shutdown` to finish."""

    def __init__(self, app: FastAPI, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._app = app

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


def _hash_key(args: argparse.Namespace) -> int:
    key = getpass.getpass("gateway key: ") if sys.stdin.isatty() else sys.stdin.readline()
    key = key.strip()
    if not key:
        print("moa-gateway: no key given", file=sys.stderr)
        return 2
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.path))
    except ConfigError as exc:
        print(f"moa-gateway: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.path}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.pipelines)} pipelines: {', '.join(config.pipelines) or 'none'})"
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from app.upstream.simulator.core import SimProfile
    from app.upstream.simulator.server import create_sim_app

    configure_logging(args.log_level)
    app = create_sim_app(SimProfile(args.ttft_ms, args.tokens_per_s), api_key=args.api_key)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, log_config=None, access_log=False
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moa-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", help="YAML config (default: $MOA_CONFIG or config/moa.yaml)")
    serve.add_argument("--host", help="address to listen on (default: $MOA_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $MOA_PORT or 8000)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path")
    check.set_defaults(run=_check_config)

    simulate = commands.add_parser("simulate", help="serve simulated OpenAI-compatible models")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9000)
    simulate.add_argument("--ttft-ms", type=float, default=150.0, help="time to first token")
    simulate.add_argument("--tokens-per-s", type=float, default=200.0, help="token rate (0: instant)")
    simulate.add_argument("--api-key", help="require this bearer key")
    simulate.add_argument("--log-level", default="warning")
    simulate.set_defaults(run=_simulate)

    hash_key = commands.add_parser("hash-key", help="print the SHA-256 of a gateway key read from stdin")
    hash_key.set_defaults(run=_hash_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
