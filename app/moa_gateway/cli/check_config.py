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
    print(
        f"{args.path}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"{len(config.pipelines)} pipelines: {', '.join(config.pipelines) or 'none'})"
    )
    return 0
