"""Fixtures of the client suites: one simulator and one gateway (default settings) for the package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateways import Gateway, recording_upstream, serve_gateway
from tests.support.recording import Recorder
from tests.support.suites import clients_config


@pytest.fixture(scope="package")
def upstream() -> Iterator[tuple[str, Recorder]]:
    with recording_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="package")
def shared_gateway(upstream: tuple[str, Recorder]) -> Iterator[Gateway]:
    with serve_gateway(clients_config(upstream[0])) as gateway:
        yield Gateway(gateway.url, upstream[1])
