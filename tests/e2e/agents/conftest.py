"""Fixtures of the client-library agent tests: one gateway for the folder, in front of a recording
simulator, with pipelines for agent features (tests/support/suites.agent_config)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gateways import Gateway, recording_upstream, serve_gateway
from tests.support.suites import agent_config


@pytest.fixture(scope="package")
def shared_gateway() -> Iterator[Gateway]:
    with (
        recording_upstream() as (upstream_url, recorder),
        serve_gateway(agent_config(upstream_url)) as server,
    ):
        yield Gateway(server.url, recorder)
