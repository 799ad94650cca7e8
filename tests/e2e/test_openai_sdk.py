"""The contract oracle: the official `openai` SDK against a real gateway in front of a real simulator.

Both run under uvicorn on loopback; the gateway reaches the simulator through its production httpx
client as an `type: openai` provider with a bearer key, exactly as it would reach a real provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.asks import ASK
from tests.support.configs import http_config
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread


@pytest.fixture(scope="module")
def gateway(sim_server: ServerThread) -> Iterator[ServerThread]:
    with serve_gateway(http_config(f"{sim_server.url}/v1")) as server:
        yield server


def sdk(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def client(gateway: ServerThread) -> Iterator[openai.OpenAI]:
    with sdk(gateway) as c:
        yield c


@pytest.fixture
async def async_client(gateway: ServerThread) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0) as c:
        yield c


def test_sync_completion_is_a_moa_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="moa", messages=ASK)

    content = completion.choices[0].message.content
    assert content is not None and content.startswith(
        "[omega] Synthesis of 3 responses on 'Why is the sky blue?'"
    )
    assert completion.usage is not None and completion.usage.total_tokens > 0
    moa = (completion.model_extra or {})["moa"]
    assert moa["pipeline"] == "moa" and len(moa["calls"]) == 7
    assert {c["status"] for c in moa["calls"]} == {"ok"}


def test_extra_body_moa_options_return_proposals(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="moa-1", messages=ASK, extra_body={"moa": {"include_proposals": True}}
    )

    calls = (completion.model_extra or {})["moa"]["calls"]
    assert [c["text"].split("]")[0] for c in calls if c["role"] == "proposer"] == [
        "[alpha",
        "[beta",
        "[gamma",
    ]


def test_sync_stream_delivers_the_aggregators_tokens_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="moa-1", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[omega] Synthesis of 3 responses")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 10, (
        "tokens arrive one by one"
    )
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert len((last.model_extra or {})["moa"]["calls"]) == 4


async def test_async_completion_and_stream(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(model="moa-1", messages=ASK, seed=3)
    stream = await async_client.chat.completions.create(model="moa-1", messages=ASK, seed=3, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert streamed == completion.choices[0].message.content, "same request, same answer, either mode"


def test_direct_model_call(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="beta", messages=ASK, max_tokens=3)

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["moa", "moa-1", "alpha", "beta", "gamma", "omega"]
    assert client.models.retrieve("moa").id == "moa"


def test_unknown_model_raises_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=ASK)

    assert caught.value.code == "model_not_found"


def test_invalid_parameter_raises_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="moa", messages=ASK, temperature=3)

    assert caught.value.param == "temperature"


def test_metrics_of_the_real_server_count_the_http_providers_calls(sim_server: ServerThread) -> None:
    with (
        serve_gateway(http_config(f"{sim_server.url}/v1")) as server,
        sdk(server) as client,
    ):
        client.chat.completions.create(model="moa", messages=ASK)
        list(client.chat.completions.create(model="moa-1", messages=ASK, stream=True))
        scrape = Scrape(httpx.get(f"{server.url}/metrics").text)

    count = "moa_upstream_request_duration_seconds_count"
    assert scrape.value(count, provider="remote", model="alpha", role="proposer", outcome="ok") == 3
    assert scrape.value(count, provider="remote", model="omega", role="aggregator") == 2
    assert scrape.value("moa_requests_total", model="moa", status="200") == 1
    assert scrape.value("moa_requests_total", model="moa-1", status="200") == 1


def bad_gateway(sim_server: ServerThread, **kwargs: Any) -> ServerThread:
    return serve_gateway(http_config(f"{sim_server.url}/v1", **kwargs))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_wrong_upstream_key_is_502_without_the_key(sim_server: ServerThread, stream: bool) -> None:
    wrong = "sk-wrong-key-must-not-leak"
    with (
        bad_gateway(sim_server, api_key=wrong) as server,
        sdk(server) as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        client.chat.completions.create(model="moa", messages=ASK, stream=stream)

    assert caught.value.status_code == 502
    assert "refused the gateway's credentials (401)" in caught.value.message
    assert wrong not in caught.value.response.text


def test_slow_upstream_is_504(sim_server: ServerThread) -> None:
    slow = {"slow": {"provider": "remote", "params": {"simulate": {"ttft_ms": 3000}}}}
    config = http_config(f"{sim_server.url}/v1", extra_models=slow)
    timeout = config.providers["remote"].model_copy(update={"timeout_s": 0.2})
    config = config.model_copy(update={"providers": {"remote": timeout}})
    with (
        serve_gateway(config) as server,
        sdk(server) as client,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        client.chat.completions.create(model="slow", messages=ASK)

    assert caught.value.status_code == 504
    assert "model slow: no answer within 0.2s" in caught.value.message
