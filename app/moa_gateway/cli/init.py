"""`moa-gateway init [PATH]`: write a commented starter config (one provider whose URL and key come from
the environment, one pipeline); never overwrites a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moa_gateway.cli.demo import starter_config_text

DEFAULT_PATH = Path("config/moa.yaml")  # where `moa-gateway serve` looks when nothing else is named


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("init", help="write a commented starter config (never overwrites)")
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=DEFAULT_PATH,
        help=f"where to write it (default: {DEFAULT_PATH})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8") as file:  # "x": fails if the file exists
            file.write(starter_config_text())
    except FileExistsError:
        print(f"moa-gateway: {path} already exists: not overwritten (name another PATH)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"moa-gateway: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 1
    serve = "moa-gateway serve" if path == DEFAULT_PATH else f"moa-gateway serve --config {path}"
    print(
        f"wrote {path}: set OPENAI_API_KEY (and OPENAI_BASE_URL for a provider other than OpenAI), "
        f"check it with `moa-gateway check-config {path}`, then `{serve}`"
    )
    return 0
