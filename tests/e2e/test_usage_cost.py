"""`usage.cost` (USD, as OpenRouter returns it) in every response that has `usage`, through the openai SDK
against a real gateway in front of the simulator: chat (JSON and the stream's usage chunk), completions,
responses and embeddings; the same figure as `moa.cost_usd` and the `x-moa-cost-usd` header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.asks import ASK, SKY
from tests.support.configs import http_config
from tests.support.gateways import serve_gateway
from tests.support.servers import ServerThread


@pytest.fixture(scope="module")
def client(sim_server: ServerThread) -> Iterator[openai.OpenAI]:
    with (
        serve_gateway(http_config(f"{sim_server.url}/v1")) as server,
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="x") as sdk,
    ):
        yield sdk


def _cost(usage: Any) -> Any:
    return (usage.model_extra or {}).get("cost")


def test_a_chat_completion_says_its_cost_in_usage(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="moa-1", messages=ASK)
    completion = raw.parse()

    moa = (completion.model_extra or {})["moa"]
    assert completion.usage is not None and _cost(completion.usage) == moa["cost_usd"] > 0
    assert _cost(completion.usage) == float(raw.headers["x-moa-cost-usd"])


def test_a_direct_calls_cost_is_its_tokens_at_the_models_price(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="alpha", messages=ASK)  # $1 in, $2 out per Mtok

    usage = completion.usage
    assert usage is not None
    expected = (usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6
    assert _cost(usage) == pytest.approx(expected, abs=1e-10)


def test_the_streams_usage_chunk_says_the_cost(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="moa-1", messages=ASK, stream=True, stream_options={"include_usage": True}
        )
    )

    last = chunks[-1]
    assert last.usage is not None and _cost(last.usage) == (last.model_extra or {})["moa"]["cost_usd"] > 0


def test_completions_say_the_cost_json_and_streamed(client: openai.OpenAI) -> None:
    completion = client.completions.create(model="moa-1", prompt="Name a colour.")
    chunks = list(
        client.completions.create(
            model="moa-1", prompt="Name a colour.", stream=True, stream_options={"include_usage": True}
        )
    )

    assert completion.usage is not None and _cost(completion.usage) > 0
    assert _cost(completion.usage) == (completion.model_extra or {})["moa"]["cost_usd"]
    streamed = chunks[-1].usage
    assert streamed is not None and _cost(streamed) == (chunks[-1].model_extra or {})["moa"]["cost_usd"] > 0


def test_responses_say_the_cost_json_and_streamed(client: openai.OpenAI) -> None:
    response = client.responses.create(model="moa-1", input=SKY)
    events = list(client.responses.create(model="moa-1", input=SKY, stream=True))

    assert (
        response.usage is not None
        and _cost(response.usage) == (response.model_extra or {})["moa"]["cost_usd"] > 0
    )
    completed = next(e for e in events if e.type == "response.completed").response
    assert completed.usage is not None and _cost(completed.usage) > 0


def test_embeddings_say_the_cost(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(model="alpha", input=["one", "two"])
    embeddings = raw.parse()

    assert _cost(embeddings.usage) == float(raw.headers["x-moa-cost-usd"]) > 0
