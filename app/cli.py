"""`moa-gateway serve | check-config | simulate`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from app.config import load_config
from app.errors import ConfigError
from app.logs import configure_logging
from app.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in {"config": args.config, "host": args.host, "port": args.port}.items() if v}
    if os.environ.get("WEB_CONCURRENCY", "1") != "1":
        # Metrics, limits and circuit breakers live in the process: scale with replicas instead.
        print("moa-gateway: runs one worker per process; scale with more replicas", file=sys.stderr)
        return 2
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    try:
        config = load_config(settings.config)
    except ConfigError as exc:
        print(f"moa-gateway: {exc}", file=sys.stderr)
        return 2
    from app.main import create_app

    app = create_app(settings, config)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, log_config=None)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
