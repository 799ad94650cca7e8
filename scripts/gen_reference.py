"""Write the reference pages of the docs site from the code: `python -m scripts.gen_reference`.

`--check` writes nothing and exits 1 naming each page that differs from what the code gives now
(tests/unit/test_docs_reference.py checks the same)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.docgen import cli_ref, config_ref, extension_ref, metrics_ref, settings_ref

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
COMMAND = "python -m scripts.gen_reference"
PAGES: dict[str, Callable[[], str]] = {
    "config.md": config_ref.render,
    "settings.md": settings_ref.render,
    "cli.md": cli_ref.render,
    "metrics.md": metrics_ref.render,
    "extension.md": extension_ref.render,
}


def generate() -> dict[str, str]:
    """Each page's name and text, as the code gives it now."""
    return {name: render().rstrip("\n") + "\n" for name, render in PAGES.items()}


def stale(pages: dict[str, str]) -> list[str]:
    """The pages whose committed text differs from `pages` (or that are missing)."""
    return [
        name
        for name, text in pages.items()
        if not (REFERENCE / name).exists() or (REFERENCE / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    pages = generate()
    if args.check:
        behind = stale(pages)
        for name in behind:
            print(f"docs/reference/{name} is out of date: run `{COMMAND}`", file=sys.stderr)
        return 1 if behind else 0
    for name, text in pages.items():
        (REFERENCE / name).write_text(text)
    print(f"wrote {len(pages)} pages to docs/reference/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
