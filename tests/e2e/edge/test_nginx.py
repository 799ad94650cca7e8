"""The gateway behind Debian's nginx with deploy/nginx/moa-gateway.conf, through the openai SDK: streams
arrive token by token, a client that hangs up cancels the upstream calls, JSON answers and errors keep
their shape, and one request id runs from nginx's log to the client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.asks import ASK
from tests.support.cli import free_port
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape, scrape
from tests.support.nginx import Nginx
from tests.support.servers import ServerThread

pytestmark = pytest.mark.edge


def edge_config() -> dict[str, Any]:
    """Pipelines whose aggregator streams slowly (`slow`: 20 words at 20 tokens a second), never finishes
    (`forever`), or whose proposers never answer (`stuck`); and a quick `moa`."""

    def model(**simulate: Any) -> dict[str, Any]:
        return {"provider": "sim", "params": {"simulate": simulate}}

    return {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0}},
        "models": {
            "fast": model(),
            "trickle": model(tokens_per_s=20, answer=" ".join(f"word{i}" for i in range(20))),
            "endless": model(fault="endless_trickle"),
            **{name: model(fault="hang") for name in ["hang-a", "hang-b", "hang-c"]},
        },
        "pipelines": {
            "moa": {"layers": [{"proposers": ["fast", "fast"]}], "aggregator": "fast"},
            "slow": {"layers": [{"proposers": ["fast"]}], "aggregator": "trickle"},
            "forever": {"layers": [{"proposers": ["fast"]}], "aggregator": "endless"},
            "stuck": {"layers": [{"proposers": ["hang-a", "hang-b", "hang-c"]}], "aggregator": "fast"},
        },
    }


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    with serve_gateway(edge_config(), production_server=True) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(gateway: ServerThread) -> Iterator[Nginx]:
    with Nginx(gateway.port) as proxy:
        yield proxy


@pytest.fixture
def client(nginx: Nginx) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{nginx.url}/v1", api_key="unused", max_retries=0) as sdk:
        yield sdk


def test_a_stream_arrives_token_by_token(client: openai.OpenAI) -> None:
    arrivals: list[float] = []
    text = ""
    with client.chat.completions.create(model="slow", messages=ASK, stream=True) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic())
                text += chunk.choices[0].delta.content
    # The aggregator writes 20 tokens over about a second; nginx passes each on as it comes, compressed
    # (the site gzips event streams), rather than holding them all until the end.
    assert len(arrivals) >= 10 and text
    halfway = arrivals[len(arrivals) // 2]
    assert arrivals[-1] - arrivals[0] > 0.5
    assert arrivals[-1] - halfway > 0.25, "the second half of the answer came all at once"


@pytest.mark.parametrize(
    ("pipeline", "role", "calls"), [("forever", "aggregator", 1), ("stuck", "proposer", 3)]
)
def test_a_client_hanging_up_cancels_the_upstream_calls(
    client: openai.OpenAI, gateway: ServerThread, pipeline: str, role: str, calls: int
) -> None:
    """Mid-answer (a stream whose aggregator never ends), or while the proposers work (a JSON request
    the client gives up on): nginx closes its connection to the gateway, which cancels the run."""
    before = scrape(gateway.url)
    if pipeline == "forever":
        with client.chat.completions.create(model=pipeline, messages=ASK, stream=True) as stream:
            next(c for c in stream if c.choices and c.choices[0].delta.content)  # the answer streams
    else:
        with pytest.raises(openai.APITimeoutError):
            client.with_options(timeout=0.5).chat.completions.create(model=pipeline, messages=ASK)

    def cancelled(metrics: Scrape) -> float:
        return metrics.value("moa_upstream_request_duration_seconds_count", role=role, outcome="cancelled")

    deadline = time.monotonic() + 5
    while cancelled(after := scrape(gateway.url)) < cancelled(before) + calls:
        assert time.monotonic() < deadline, "the upstream calls went on after the client left"
        time.sleep(0.05)
    status_499 = after.value("moa_requests_total", model=pipeline, status="499")
    assert status_499 == before.value("moa_requests_total", model=pipeline, status="499") + 1
    assert after.value("moa_requests_in_flight") == 0


def test_a_json_answer_and_its_request_id(client: openai.OpenAI, nginx: Nginx) -> None:
    given = client.chat.completions.with_raw_response.create(
        model="moa", messages=ASK, extra_headers={"x-request-id": "client-id-42"}
    )
    made = client.chat.completions.with_raw_response.create(model="moa", messages=ASK)
    completion = made.parse()
    assert completion.choices[0].message.content and completion.usage and completion.usage.total_tokens
    assert (completion.model_extra or {})["moa"]["pipeline"] == "moa"
    # The client's id is the gateway's; without one, nginx's own id reaches the gateway and comes back.
    assert given.headers["x-request-id"] == "client-id-42"
    made_id = made.headers["x-request-id"]
    assert len(made_id) == 32
    time.sleep(0.1)  # the access log line is written once the response is sent
    log = nginx.access_log()
    assert "rid=client-id-42" in log and f"rid={made_id}" in log


def test_errors_keep_openais_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:  # the gateway's, passed through
        client.chat.completions.create(model="no-such-pipeline", messages=ASK)
    with pytest.raises(openai.APIStatusError) as too_large:  # nginx's own, past client_max_body_size
        client.chat.completions.create(model="moa", messages=[{"role": "user", "content": "x" * 5_000_000}])
    assert unknown.value.code == "model_not_found" and unknown.value.type == "invalid_request_error"
    assert too_large.value.status_code == 413
    assert too_large.value.code == "request_too_large" and too_large.value.type == "invalid_request_error"


def test_an_unreachable_gateway_is_a_502_in_openais_shape() -> None:
    with (
        Nginx(free_port()) as proxy,
        openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="unused", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as unavailable,
    ):
        client.chat.completions.create(model="moa", messages=ASK)
    assert unavailable.value.status_code == 502 and unavailable.value.code == "gateway_unavailable"
    assert unavailable.value.type == "server_error"


def test_a_body_up_to_the_gateways_limit_reaches_it(client: openai.OpenAI) -> None:
    """3 MB: over nginx's default client_max_body_size (1 MiB), under MOA_MAX_BODY_BYTES (4 MiB)."""
    big: list[Any] = [{"role": "user", "content": "word " * 600_000}]
    completion = client.chat.completions.create(model="moa", messages=big)
    assert completion.choices[0].message.content


def test_metrics_stay_off_the_public_site(nginx: Nginx, gateway: ServerThread) -> None:
    """/metrics needs no key, so the site does not serve it; Prometheus scrapes the gateway itself."""
    assert httpx.get(f"{gateway.url}/metrics").status_code == 200
    hidden = httpx.get(f"{nginx.url}/metrics")
    assert hidden.status_code == 404 and hidden.json()["error"]["message"] == "Not found"
