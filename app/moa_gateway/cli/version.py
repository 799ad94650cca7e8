"""`moa-gateway --version`: the installed distribution's version, from its metadata (pyproject.toml's
`version`), so the CLI never reports a number of its own."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "moa-gateway"


def package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from sources that were never installed
        return "unknown (not installed)"
