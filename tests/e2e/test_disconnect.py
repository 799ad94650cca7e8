"""A client that goes away takes its upstream calls with it: the upstream sees its connections closed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import HangingUpstream, ServerThread, hanging_moa_config, raw_chat_request


@pytest.fixture
def hanging() -> Iterator[tuple[HangingUpstream, ServerThread]]:
    upstream = HangingUpstream()
    with ServerThread(upstream) as upstream_server:
        config = parse_config(hanging_moa_config(upstream_server.url), "test")
        with serve_gateway(config, Settings(sse_keepalive_s=0.05)) as gateway:
            yield upstream, gateway


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_client_disconnect_closes_every_upstream_connection(
    hanging: tuple[HangingUpstream, ServerThread], stream: bool
) -> None:
    upstream, gateway = hanging
    client = raw_chat_request(gateway.port, stream)
    assert upstream.wait(upstream.arrived, 3), "the three proposers reached the upstream"

    client.close()

    assert upstream.wait(upstream.closed, 3), "every upstream connection was closed after the client left"
    scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)
    cancelled = scrape.value(
        "moa_upstream_request_duration_seconds_count", role="proposer", outcome="cancelled"
    )
    assert cancelled == 3
    assert scrape.value("moa_requests_in_flight") == 0
    time.sleep(0.05)
    assert len(upstream.arrived) == 3, "the aggregator was never called"
