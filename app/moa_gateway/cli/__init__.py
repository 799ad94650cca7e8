"""`moa-gateway serve | init | check-config | hash-key | simulate | eval`, and `--version`."""

from __future__ import annotations

import argparse

from moa_gateway.cli import check_config, hash_key, init, serve, simulate
from moa_gateway.cli import eval as eval_command
from moa_gateway.cli.version import package_version


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moa-gateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serving = commands.add_parser("serve", help="serve the gateway")
    source = serving.add_mutually_exclusive_group()
    source.add_argument("--config", help="YAML config (default: $MOA_CONFIG or config/moa.yaml)")
    source.add_argument(
        "--demo", action="store_true", help="serve the demo config shipped in the package (simulated models)"
    )
    serving.add_argument("--host", help="address to listen on (default: $MOA_HOST or 127.0.0.1)")
    serving.add_argument("--port", type=int, help="port (default: $MOA_PORT or 8000)")
    serving.add_argument(
        "--workers",
        help="worker processes, or `auto` for one per CPU (default: $MOA_WORKERS, $WEB_CONCURRENCY or 1)",
    )
    serving.set_defaults(run=serve.run)

    init.add_parser(commands)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("path")
    check.set_defaults(run=check_config.run)

    simulating = commands.add_parser(
        "simulate",
        help="serve simulated OpenAI-compatible models",
        description="Serve the simulator's OpenAI-compatible API (/v1/chat/completions, /v1/embeddings, "
        "/v1/models) over HTTP; one log line per request.",
    )
    simulating.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    simulating.add_argument("--port", type=int, default=9000, help="port (default: 9000)")
    simulating.add_argument("--ttft-ms", type=float, default=150.0, help="time to first token")
    simulating.add_argument("--tokens-per-s", type=float, default=200.0, help="token rate (0: instant)")
    simulating.add_argument("--api-key", help="require this bearer key")
    simulating.add_argument(
        "--log-level", default="info", help="info: a line per request (default); warning: errors only"
    )
    simulating.set_defaults(run=simulate.run)

    hashing = commands.add_parser(
        "hash-key",
        help="print the SHA-256 of a gateway key read from stdin",
        description="Print the hex SHA-256 of a gateway key, for auth.api_key_sha256 in the config. The "
        "key is read from stdin (its first line, surrounding spaces dropped), so it stays out of the shell "
        "history and the process list; on a terminal it is prompted for without echo.",
        epilog='example: printf %s "$GATEWAY_KEY" | moa-gateway hash-key',
    )
    hashing.set_defaults(run=hash_key.run)

    eval_command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code
