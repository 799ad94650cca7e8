"""A client that leaves in the middle of a streamed answer takes the run with it, on each of the three
streaming APIs: the aggregator's call (an endless stream) ends as cancelled and the request counts as
499, within a few seconds of the client closing its connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from moa_gateway.settings import Settings
from tests.support.asks import SKY
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape, scrape
from tests.support.servers import ServerThread, raw_post

APIS: dict[str, tuple[str, dict[str, Any], bytes]] = {  # path, body, what shows the answer streaming
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": SKY}]}, b'"content":"['),
    "completions": ("/v1/completions", {"prompt": SKY}, b'"text":"['),
    "responses": ("/v1/responses", {"input": SKY}, b"event: response.output_text.delta"),
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    endless = {"provider": "sim", "params": {"simulate": {"fault": "endless_trickle"}}}
    config = {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
        "models": {"fast": {"provider": "sim"}, "endless": endless},
        "pipelines": {"forever": {"layers": [{"proposers": ["fast"]}], "aggregator": "endless"}},
    }
    settings = Settings()
    with serve_gateway(config, settings, production_server=True) as server:
        yield server


def cancelled_aggregators(metrics: Scrape) -> float:
    return metrics.value(
        "moa_upstream_request_duration_seconds_count", role="aggregator", outcome="cancelled"
    )


@pytest.mark.parametrize("api", list(APIS))
def test_a_client_leaving_mid_answer_cancels_the_aggregators_call(gateway: ServerThread, api: str) -> None:
    path, body, streaming = APIS[api]
    before = scrape(gateway.url)
    client = raw_post(gateway.port, path, orjson.dumps({"model": "forever", "stream": True, **body}))
    received = b""
    while streaming not in received:  # the answer is streaming: the stream committed and is writing
        data = client.recv(65536)
        assert data, received
        received += data

    client.close()

    deadline = time.monotonic() + 5
    while cancelled_aggregators(after := scrape(gateway.url)) == cancelled_aggregators(before):
        assert time.monotonic() < deadline, "the aggregator's call went on after the client left"
        time.sleep(0.05)
    assert after.value("moa_requests_total", model="forever", status="499") == (
        before.value("moa_requests_total", model="forever", status="499") + 1
    )
    assert after.value("moa_requests_in_flight") == 0
