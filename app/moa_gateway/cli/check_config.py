"""`moa-gateway check-config PATH`: validate a config file, print a one-line summary, exit 2 if bad."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from moa_gateway.config import ConfigError, load_config


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.path))
    except ConfigError as exc:
        print(f"moa-gateway: {exc}", file=sys.stderr)
        return 2
    counts = ", ".join(
        _count(len(items), noun)
        for items, noun in (
            (config.providers, "provider"),
            (config.models, "model"),
            (config.pipelines, "pipeline"),
        )
    )
    print(f"{args.path}: ok ({counts}: {', '.join(config.pipelines) or 'none'})")
    return 0


def _count(n: int, noun: str) -> str:
    """`1 model`, `2 models`, `0 pipelines`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
