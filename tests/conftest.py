"""Shared fixtures: a real simulator server. The factories they use live in `tests/support/`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.support.configs import SIM_KEY
from tests.support.servers import ServerThread


@pytest.fixture(scope="session")
def sim_server() -> Iterator[ServerThread]:
    """The standalone simulator, requiring SIM_KEY, fast (5 ms to first token, 2000 tokens/s)."""
    with ServerThread(create_sim_app(SimProfile(ttft_ms=5, tokens_per_s=2000), api_key=SIM_KEY)) as server:
        yield server
