"""Fixtures the e2e folders share; a folder's conftest provides the `shared_gateway` this one clears."""

from __future__ import annotations

import pytest

from tests.support.gateways import Gateway


@pytest.fixture
def gateway(shared_gateway: Gateway) -> Gateway:
    """The folder's shared gateway, its upstream's recording cleared for this test."""
    shared_gateway.recorder.clear()
    return shared_gateway
