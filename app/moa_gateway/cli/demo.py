"""The configs the package ships (`serve --demo`, `init`): files inside the installed package, so they
are found from any directory, not only from a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _packaged(name: str) -> Path:
    # setuptools installs package data as plain files (the wheel is not zip-imported), so the
    # traversable is a real path that worker processes can open again.
    return Path(str(resources.files("moa_gateway.config").joinpath(name)))


def demo_config_path() -> Path:
    """The demo config: simulated models, no keys, no network."""
    return _packaged("demo.yaml")


def starter_config_text() -> str:
    """The commented starter config that `moa-gateway init` writes."""
    return _packaged("starter.yaml").read_text(encoding="utf-8")
