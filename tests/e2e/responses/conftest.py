"""Fixtures of the Responses and legacy Completions tests: a gateway in front of a recording simulator
(tests/support/suites.responses_config), and a real `redis-server` on a free port for the Redis response
store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateways import Gateway, recording_upstream, serve_gateway
from tests.support.recording import Recorder
from tests.support.redis_server import redis_server
from tests.support.suites import responses_config


@pytest.fixture(scope="package")
def upstream() -> Iterator[tuple[str, Recorder]]:
    with recording_upstream() as upstream:
        yield upstream


@pytest.fixture(scope="package")
def shared_gateway(upstream: tuple[str, Recorder]) -> Iterator[Gateway]:
    with serve_gateway(responses_config(upstream[0])) as gateway:
        yield Gateway(gateway.url, upstream[1])


@pytest.fixture(scope="package")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url
