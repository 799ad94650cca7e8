"""Agent-ready chat completions through the official openai SDK: tools (the aggregator acts, proposers
advise), structured outputs, reasoning models, n and logprobs, every parameter, embeddings. The upstream
records what each proposer and the aggregator received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from moa_gateway.core.advice import ADVISE_INSTRUCTION
from tests.support.asks import ASK_WEATHER
from tests.support.gateways import Gateway
from tests.support.metrics import Scrape
from tests.support.suites import WEATHER_TOOL

WEATHER_SCHEMA = WEATHER_TOOL["function"]["parameters"]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def moa_of(response: Any) -> dict[str, Any]:
    return dict((response.model_extra or {})["moa"])


def test_the_aggregator_calls_the_tool_and_proposers_only_advise(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    completion = client.chat.completions.create(
        model="moa-1", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="auto"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)
    calls = moa_of(completion)["calls"]
    assert [c["model"] for c in calls if c.get("tool_calls")] == ["omega"], "the aggregator made the call"
    assert all(c["status"] == "ok" for c in calls) and len(calls) == 4

    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["tools"] == [WEATHER_TOOL] and aggregator["tool_choice"] == "auto"
    proposers = gateway.proposer_bodies()
    assert len(proposers) == 3
    for body in proposers:
        assert not {"tools", "tool_choice", "parallel_tool_calls", "response_format"} & body.keys()
        assert body["messages"][0]["role"] == "system"
        assert ADVISE_INSTRUCTION in body["messages"][0]["content"]


def test_streamed_tool_call_arrives_in_pieces_and_reassembles(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="moa-1", messages=ASK_WEATHER, tools=[WEATHER_TOOL], stream=True
    )
    chunks = list(stream)

    pieces = [
        tc.function.arguments
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or []
        if tc.function and tc.function.arguments
    ]
    assert len(pieces) > 1, "the arguments stream as several deltas, as the aggregator sent them"
    heads = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [] if tc.id]
    assert len(heads) == 1 and heads[0].function is not None and heads[0].function.name == "get_weather"
    jsonschema.validate(json.loads("".join(pieces)), WEATHER_SCHEMA)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]


def test_sdk_stream_helper_reassembles_the_tool_call(gateway: Gateway) -> None:
    with (
        openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client,
        client.chat.completions.stream(model="moa-1", messages=ASK_WEATHER, tools=[WEATHER_TOOL]) as stream,
    ):
        final = stream.get_final_completion()

    tool_calls = final.choices[0].message.tool_calls
    assert tool_calls is not None and tool_calls[0].function.name == "get_weather"
    jsonschema.validate(json.loads(tool_calls[0].function.arguments), WEATHER_SCHEMA)


def test_a_two_turn_agent_loop_ends_with_an_answer_using_the_tool_result(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    messages: list[Any] = list(ASK_WEATHER)
    first = client.chat.completions.create(model="moa-1", messages=messages, tools=[WEATHER_TOOL])
    call = (first.choices[0].message.tool_calls or [])[0]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    result = "Paris: 18 degrees celsius, light rain. " + "x" * 9000 + " END-OF-RESULT"
    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    gateway.recorder.clear()

    second = client.chat.completions.create(model="moa-1", messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert "Paris: 18 degrees" in (second.choices[0].message.content or "")
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": result}
    assert aggregator["messages"][-2]["tool_calls"][0]["id"] == call.id
    for body in gateway.proposer_bodies():
        roles = [m["role"] for m in body["messages"]]
        assert "tool" not in roles and not any("tool_calls" in m for m in body["messages"])
        as_text = body["messages"][-1]["content"]
        assert as_text.startswith(f"[Result of tool call {call.id}]")
        assert "Paris: 18 degrees" in as_text and "END-OF-RESULT" in as_text, "head and tail are kept"
        assert "characters omitted" in as_text and len(as_text) < 4300, "cut to MOA_TOOL_RESULT_CHARS"
        assert f"[Called tool get_weather (id {call.id}) with arguments:" in body["messages"][-2]["content"]


def test_forced_tool_choice_with_bypass_skips_the_proposers(client: openai.OpenAI, gateway: Gateway) -> None:
    forced: Any = {"type": "function", "function": {"name": "get_weather"}}
    completion = client.chat.completions.create(
        model="bypass", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice=forced
    )

    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c["role"] for c in moa_of(completion)["calls"]] == ["aggregator"]
    assert gateway.proposer_bodies() == []

    client.chat.completions.create(
        model="moa-1", messages=ASK_WEATHER, tools=[WEATHER_TOOL], tool_choice="required"
    )
    assert len(gateway.proposer_bodies()) == 3, "tools_mode advise (the default): proposers still advise"


class Weather(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str]


def test_parse_with_a_pydantic_model_gets_a_valid_object(client: openai.OpenAI, gateway: Gateway) -> None:
    completion = client.chat.completions.parse(model="moa-1", messages=ASK_WEATHER, response_format=Weather)

    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["response_format"]["type"] == "json_schema"
    assert all("response_format" not in body for body in gateway.proposer_bodies())
    assert "degraded" not in moa_of(completion)


def test_an_answer_off_the_schema_is_retried_once_with_the_error(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    completion = client.chat.completions.parse(
        model="sloppy-json", messages=ASK_WEATHER, response_format=Weather
    )

    assert isinstance(completion.choices[0].message.parsed, Weather)
    finals = [c for c in moa_of(completion)["calls"] if c["role"] == "aggregator"]
    assert len(finals) == 2
    first, retry = gateway.recorder.sent_to("sloppy")
    assert retry["messages"][:-2] == first["messages"]
    assert retry["messages"][-1]["role"] == "user"
    assert "does not match the required JSON schema" in retry["messages"][-1]["content"]


def test_an_answer_still_off_the_schema_is_returned_marked_degraded(gateway: Gateway) -> None:
    body = {
        "model": "hopeless-json",
        "messages": ASK_WEATHER,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": Weather.model_json_schema(), "strict": True},
        },
    }
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=10)

    assert response.status_code == 200
    moa = response.json()["moa"]
    assert moa["degraded"] == "schema_invalid"
    assert len([c for c in moa["calls"] if c["role"] == "aggregator"]) == 2


def test_an_invalid_schema_is_a_400(gateway: Gateway) -> None:
    body = {
        "model": "moa-1",
        "messages": ASK_WEATHER,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "nonsense"}},
        },
    }
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=10)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (
        error["param"] == "response_format.json_schema.schema"
        and "not a valid JSON schema" in error["message"]
    )
    assert gateway.recorder.bodies() == [], "rejected before any call"


def test_reasoning_of_the_aggregator_reaches_the_client_and_proposer_thinking_does_not(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    completion = client.chat.completions.create(model="thinking", messages=ASK_WEATHER)

    message = completion.choices[0].message
    assert (message.model_extra or {}).get("reasoning_content"), "the aggregator's reasoning, passed through"
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    assert (completion.usage.completion_tokens_details.reasoning_tokens or 0) > 0
    (thinker_body,) = gateway.recorder.sent_to("thinker")
    assert thinker_body["messages"] == ASK_WEATHER
    (aggregator,) = gateway.recorder.sent_to("reasoner")
    references = aggregator["messages"][0]["content"]
    assert "[thinker]" in references or "thinker" in references
    assert "<think>" not in references and "</think>" not in references


def test_streamed_reasoning_comes_before_the_content(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="thinking", messages=ASK_WEATHER, stream=True))

    kinds = []
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if (delta.model_extra or {}).get("reasoning_content"):
            kinds.append("reasoning")
        if delta.content:
            kinds.append("content")
    assert kinds and kinds[0] == "reasoning" and "content" in kinds
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")


def test_n_choices_and_logprobs_come_from_the_final_call(client: openai.OpenAI, gateway: Gateway) -> None:
    completion = client.chat.completions.create(
        model="moa-1", messages=ASK_WEATHER, n=3, logprobs=True, top_logprobs=2
    )

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len({c.message.content for c in completion.choices}) == 3
    for choice in completion.choices:
        assert choice.logprobs is not None and choice.logprobs.content
        assert len(choice.logprobs.content[0].top_logprobs) == 2
    calls = moa_of(completion)["calls"]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == sum(c["completion_tokens"] for c in calls)
    for body in gateway.proposer_bodies():
        assert not {"n", "logprobs", "top_logprobs"} & body.keys()


def test_n_choices_stream_with_their_index(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="moa-1", messages=ASK_WEATHER, n=2, stream=True))

    texts = {0: "", 1: ""}
    finishes = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts[0] and texts[1] and texts[0] != texts[1]
    assert finishes == {0: "stop", 1: "stop"}


EVERY_FIELD: dict[str, Any] = {
    "reasoning_effort": "low",
    "verbosity": "low",
    "metadata": {"team": "search"},
    "store": False,
    "service_tier": "flex",
    "prediction": {"type": "content", "content": "The weather"},
    "logit_bias": {"1734": -100},
    "seed": 7,
    "temperature": 0.3,
    "max_completion_tokens": 200,
    "parallel_tool_calls": False,
    "user": "u-1",
}
SAMPLING = {"seed", "temperature", "max_completion_tokens", "user"}


@pytest.mark.parametrize("model", ["omega", "moa-1"])
def test_every_field_reaches_the_acting_model_verbatim(
    client: openai.OpenAI, gateway: Gateway, model: str
) -> None:
    fields = {**EVERY_FIELD, "tools": [WEATHER_TOOL], "tool_choice": "none"}
    client.chat.completions.create(model=model, messages=ASK_WEATHER, extra_body=fields)

    (final,) = gateway.recorder.sent_to("omega")
    assert {name: final.get(name) for name in fields} == fields
    assert "moa" not in final
    for body in gateway.proposer_bodies():
        assert {name: body[name] for name in SAMPLING} == {name: fields[name] for name in SAMPLING}
        assert not (set(fields) - SAMPLING) & body.keys()


def test_a_proposers_own_params_pin_its_reasoning_effort(gateway: Gateway) -> None:
    """The thinker proposer's config sets `simulate`; the client's reasoning_effort stays with the
    aggregator."""
    body = {"model": "thinking", "messages": ASK_WEATHER, "reasoning_effort": "high"}
    assert httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=10).status_code == 200

    (thinker_body,) = gateway.recorder.sent_to("thinker")
    assert "reasoning_effort" not in thinker_body and thinker_body["simulate"] == {"think_tags": True}
    (aggregator,) = gateway.recorder.sent_to("reasoner")
    assert aggregator["reasoning_effort"] == "high"


def test_references_go_into_the_developer_message(client: openai.OpenAI, gateway: Gateway) -> None:
    messages: list[Any] = [{"role": "developer", "content": "Be brief."}, *ASK_WEATHER]
    client.chat.completions.create(model="moa-1", messages=messages)

    (aggregator,) = gateway.recorder.sent_to("omega")
    assert [m["role"] for m in aggregator["messages"]] == ["developer", "user"]
    assert aggregator["messages"][0]["content"].startswith("Be brief.\n\n")
    assert "Responses from models:" in aggregator["messages"][0]["content"]


def test_a_text_only_model_gets_a_placeholder_for_an_image(client: openai.OpenAI, gateway: Gateway) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages: list[Any] = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    completion = client.chat.completions.create(model="mixed-media", messages=messages)

    assert all(c["status"] == "ok" for c in moa_of(completion)["calls"])
    (texty,) = gateway.recorder.sent_to("texty")
    assert texty["messages"][0]["content"][1] == {
        "type": "text",
        "text": "[image url omitted: this model reads text only]",
    }
    (alpha,) = gateway.recorder.sent_to("alpha")
    assert alpha["messages"][0]["content"][1] == image
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["messages"][-1]["content"][1] == image


def test_embeddings_go_to_the_models_provider_and_are_costed(client: openai.OpenAI, gateway: Gateway) -> None:
    result = client.embeddings.create(model="alpha", input=["red", "green"], dimensions=16)

    assert result.model == "alpha"
    assert [len(item.embedding) for item in result.data] == [16, 16]
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0
    (sent,) = gateway.recorder.sent_to("alpha", path="/v1/embeddings")
    assert sent["input"] == ["red", "green"] and sent["dimensions"] == 16
    scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)
    assert scrape.value("moa_upstream_tokens_total", model="alpha", role="embedding", type="input") > 0
    assert scrape.value("moa_upstream_cost_usd_total", model="alpha", role="embedding") > 0


def test_embeddings_with_a_pipeline_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="moa-1", input="red")

    assert "pipelines do not embed" in str(caught.value)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="red")


def test_a_schema_with_a_bad_dollar_schema_is_a_400_not_a_500(gateway: Gateway) -> None:
    body = {
        "model": "moa-1",
        "messages": ASK_WEATHER,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$schema": 5}}},
    }
    response = httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=10)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format.json_schema.schema"
