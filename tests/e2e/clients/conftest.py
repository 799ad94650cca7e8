"""Fixtures of the client suites: one simulator and one gateway (default settings) for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moa_gateway.settings import Settings
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from tests.e2e.clients.support import Gateway, serve
from tests.support.configs import SIM_KEY
from tests.support.recording import Recorder
from tests.support.servers import ServerThread


@pytest.fixture(scope="package")
def upstream() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_sim_app(SimProfile(ttft_ms=1, tokens_per_s=0), api_key=SIM_KEY))
    with ServerThread(recorder) as server:
        yield f"{server.url}/v1", recorder


@pytest.fixture(scope="package")
def shared_gateway(upstream: tuple[str, Recorder]) -> Iterator[Gateway]:
    with serve(upstream, Settings()) as gateway:
        yield Gateway(gateway.url, upstream[1])


@pytest.fixture
def gateway(shared_gateway: Gateway) -> Gateway:
    """The shared gateway (default settings), its upstream's recording cleared for this test."""
    shared_gateway.recorder.clear()
    return shared_gateway
