"""`moa-gateway simulate`: serve the simulator's OpenAI-compatible models over HTTP."""

from __future__ import annotations

import argparse

import uvicorn

from moa_gateway.telemetry.logs import configure_logging


def run(args: argparse.Namespace) -> int:
    from moa_gateway.sim.core import SimProfile
    from moa_gateway.sim.server import create_sim_app

    configure_logging(args.log_level)
    app = create_sim_app(SimProfile(args.ttft_ms, args.tokens_per_s), api_key=args.api_key)
    # Where to point a provider's base_url, on stdout whatever the log level.
    key = "a bearer key (--api-key)" if args.api_key else "no key"
    print(f"moa-gateway simulate: serving on http://{args.host}:{args.port}/v1 ({key})", flush=True)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level=args.log_level, log_config=None, access_log=False
    )
    return 0
