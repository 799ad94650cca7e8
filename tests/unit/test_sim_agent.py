"""The simulator's agent tricks: tool calls, JSON for a schema, reasoning, `n`, logprobs, embeddings."""

from __future__ import annotations

import base64
import datetime
import enum
import json
import math
import struct
from typing import Any, Literal

import jsonschema
import pydantic
import pytest

from moa_gateway.core.tokens import count_tokens
from moa_gateway.sim import core, schema
from tests.support.asks import ASK_WEATHER

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def valid(instance: Any, against: Any) -> bool:
    return bool(jsonschema.Draft202012Validator(against).is_valid(instance))


async def complete(**fields: Any) -> dict[str, Any]:
    return await core.complete({"model": "a", "messages": ASK_WEATHER, **fields}, FAST)


async def chunks(**fields: Any) -> list[dict[str, Any]]:
    return [
        c async for c in core.stream({"model": "a", "messages": ASK_WEATHER, "stream": True, **fields}, FAST)
    ]


def deltas(stream: list[dict[str, Any]], index: int = 0) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in stream if c["choices"] and c["choices"][0]["index"] == index]


# --- the schema generator -------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(pydantic.BaseModel):
    street: str
    postcode: str = pydantic.Field(min_length=5, max_length=5)


class Order(pydantic.BaseModel):
    id: int = pydantic.Field(gt=0, le=1000, multiple_of=5)
    price: float = pydantic.Field(ge=0.5, lt=2)
    paid: bool
    colour: Colour
    kind: Literal["retail", "wholesale"]
    placed: datetime.date
    tags: list[str] = pydantic.Field(min_length=2, max_length=3)
    note: str | None = None
    shipping: Address
    previous: list[Address] = []
    discount: int | float = 0


SCHEMAS: list[Any] = [
    {"type": "string"},
    {"type": "string", "minLength": 30, "maxLength": 31},
    {"type": "string", "maxLength": 3},
    {"type": "string", "format": "date"},
    {"type": "string", "format": "date-time"},
    {"type": "string", "format": "uuid"},
    {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    {"type": "integer", "minimum": -5, "maximum": -5},
    {"type": "number", "minimum": 0.25, "maximum": 0.5},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
    {"type": "integer", "multipleOf": 7, "minimum": 8},
    {"type": "boolean"},
    {"type": "null"},
    {"type": ["null", "integer"]},
    {"const": {"fixed": [1, 2]}},
    {"enum": [3, "three", None]},
    {"type": "array", "items": {"type": "integer"}, "minItems": 4, "uniqueItems": True},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "uniqueItems": True},
    {"type": "array", "maxItems": 0},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
    {"oneOf": [{"type": "integer"}, {"type": "array"}]},
    {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"required": ["b"]}]},
    {"type": "object", "minProperties": 2},
    {"type": "object", "properties": {"n": {"$ref": "#/definitions/positive"}}, "required": ["n"],
     "definitions": {"positive": {"type": "integer", "minimum": 1}}},
    # a recursive tree: generation stops
    {"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["name", "children"]}}},
    PERSON,
    WEATHER["function"]["parameters"],  # type: ignore[index]
    Order.model_json_schema(),
]  # fmt: skip


@pytest.mark.parametrize("shape", SCHEMAS, ids=[json.dumps(s)[:60] for s in SCHEMAS])
def test_generated_json_fits_its_schema(shape: Any) -> None:
    for seed in range(5):
        value = schema.instance(shape, seed)

        assert valid(value, shape), value
        assert value == schema.instance(shape, seed)  # deterministic


def test_generated_json_passes_pydantic_validation_too() -> None:
    order = Order.model_validate(schema.instance(Order.model_json_schema(), 3))

    assert order.id % 5 == 0 and 0.5 <= order.price < 2 and len(order.tags) >= 2


def test_objects_have_every_property_and_seeds_vary_the_values() -> None:
    values = [schema.instance(PERSON, seed) for seed in range(8)]

    assert all(list(v) == ["name", "age", "email"] for v in values)
    assert len({json.dumps(v) for v in values}) > 1


@pytest.mark.parametrize(
    "shape",
    [
        PERSON,
        {"type": "string"},
        {"type": "integer"},
        {"type": "number"},
        {"type": "array", "items": {"type": "string"}},
        {"type": ["string", "null"]},
        {"enum": ["a", "b"]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        Order.model_json_schema(),
    ],
)
def test_breaking_json_does_not_fit(shape: Any) -> None:
    text = schema.breaking(shape)

    assert not valid(json.loads(text), shape)


def test_breaking_a_schema_that_takes_anything_is_not_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(schema.breaking({}))


# --- tool calls ------------------------------------------------------------------------------------


async def test_offered_tools_get_a_tool_call_fitting_the_first_tools_parameters() -> None:
    reply = await complete(tools=[WEATHER, SEARCH])

    choice = reply["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert valid(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])  # type: ignore[index]
    assert reply["usage"]["completion_tokens"] == count_tokens(call["function"]["arguments"])
    assert reply == {
        **await complete(tools=[WEATHER, SEARCH]),
        "id": reply["id"],
        "created": reply["created"],
    }


async def test_a_named_tool_choice_calls_that_tool_and_none_answers_text() -> None:
    named = {"type": "function", "function": {"name": "search"}}
    call = (await complete(tools=[WEATHER, SEARCH], tool_choice=named))["choices"][0]["message"][
        "tool_calls"
    ][0]
    text = (await complete(tools=[WEATHER, SEARCH], tool_choice="none"))["choices"][0]

    assert call["function"]["name"] == "search"
    assert list(json.loads(call["function"]["arguments"])) == ["query"]
    assert text["finish_reason"] == "stop" and text["message"]["content"].startswith("[a] On ")


async def test_after_a_tool_result_the_answer_is_text_quoting_it() -> None:
    call = (await complete(tools=[WEATHER]))["choices"][0]["message"]["tool_calls"][0]
    result = "Sunny, 24 degrees C, light wind from the west. " * 5
    turn = [
        *ASK_WEATHER,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": result},
    ]

    reply = await core.complete({"model": "a", "messages": turn, "tools": [WEATHER]}, FAST)

    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    assert f"Based on the tool result: {result[:100]}" in choice["message"]["content"]
    assert result[:101] not in choice["message"]["content"]


async def test_a_streamed_tool_call_comes_as_a_head_then_argument_pieces() -> None:
    whole = (await complete(tools=[WEATHER]))["choices"][0]["message"]["tool_calls"][0]

    stream = await chunks(tools=[WEATHER])

    calls = [d["tool_calls"][0] for d in deltas(stream) if "tool_calls" in d]
    assert calls[0] == {**whole, "index": 0, "function": {"name": "get_weather", "arguments": ""}}
    pieces = [c["function"]["arguments"] for c in calls[1:]]
    assert len(pieces) > 3 and all(set(c) == {"index", "function"} for c in calls[1:])
    assert "".join(pieces) == whole["function"]["arguments"]
    assert stream[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": {"name": "x"}},
        {"tools": [{"type": "function", "function": {"description": "no name"}}]},
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}},
        {"tools": [WEATHER], "tool_choice": "sometimes"},
        {"tool_choice": "auto"},
        {"parallel_tool_calls": False},
        {"response_format": {"type": "xml"}},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": PERSON}}},
        {"n": 0},
        {"n": 129},
        {"top_logprobs": 2},
        {"logprobs": True, "top_logprobs": 21},
        {"simulate": {"reasoning": "yes"}},
        {"simulate": {"fault": "schema_valid"}},
    ],
)
async def test_agent_fields_the_api_would_refuse_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(core.SimulatorRequestError):
        await complete(**fields)


# --- structured outputs ----------------------------------------------------------------------------


def person_format(strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": strict}}


async def test_json_schema_response_format_gets_json_that_fits_streamed_or_not() -> None:
    reply = await complete(response_format=person_format())
    stream = await chunks(response_format=person_format())

    content = reply["choices"][0]["message"]["content"]
    assert valid(json.loads(content), PERSON)
    pieces = [d["content"] for d in deltas(stream) if d.get("content")]
    assert len(pieces) > 3 and "".join(pieces) == content


async def test_json_object_response_format_gets_an_object_with_the_answer() -> None:
    plain = (await complete())["choices"][0]["message"]["content"]

    content = (await complete(response_format={"type": "json_object"}))["choices"][0]["message"]["content"]

    assert json.loads(content) == {"answer": plain}


async def test_schema_invalid_fault_breaks_the_first_answer_then_fits() -> None:
    counter = core.FaultCounter()
    simulate = {"fault": "schema_invalid", "fault_count": 1, "fault_key": "schema-test"}
    body = {"model": "a", "messages": ASK_WEATHER, "response_format": person_format(), "simulate": simulate}

    first = await core.complete(body, FAST, counter)
    second = await core.complete(body, FAST, counter)

    assert json.loads(first["choices"][0]["message"]["content"]) == {}
    assert valid(json.loads(second["choices"][0]["message"]["content"]), PERSON)


# --- reasoning -------------------------------------------------------------------------------------


async def test_reasoning_option_adds_reasoning_content_counted_in_usage() -> None:
    plain = await complete()

    reply = await complete(simulate={"reasoning": True})

    message = reply["choices"][0]["message"]
    assert message["content"] == plain["choices"][0]["message"]["content"]
    assert message["reasoning_content"].startswith("Thinking about 'What is the weather in Paris?':")
    reasoning = count_tokens(message["reasoning_content"])
    usage = reply["usage"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": reasoning}
    assert usage["completion_tokens"] == plain["usage"]["completion_tokens"] + reasoning
    assert "completion_tokens_details" not in plain["usage"]


async def test_reasoning_effort_asks_for_reasoning_and_sets_its_length() -> None:
    low = await complete(reasoning_effort="low")
    high = await complete(reasoning_effort="high")
    none = await complete(reasoning_effort="none")

    low_tokens = low["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert high["usage"]["completion_tokens_details"]["reasoning_tokens"] > low_tokens > 0
    assert "reasoning_content" not in none["choices"][0]["message"]


async def test_streamed_reasoning_comes_before_the_content() -> None:
    message = (await complete(simulate={"reasoning": True}))["choices"][0]["message"]

    stream = await chunks(simulate={"reasoning": True}, stream_options={"include_usage": True})

    kinds = [next(iter(d)) for d in deltas(stream)[1:] if d]
    assert kinds == sorted(kinds, key=lambda k: k != "reasoning_content")
    assert "".join(d.get("reasoning_content", "") for d in deltas(stream)) == message["reasoning_content"]
    assert "".join(d.get("content") or "" for d in deltas(stream)) == message["content"]
    assert stream[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


async def test_think_tags_put_the_reasoning_at_the_start_of_the_content() -> None:
    plain = (await complete())["choices"][0]["message"]["content"]

    message = (await complete(simulate={"think_tags": True}))["choices"][0]["message"]

    assert message["content"].startswith("<think>\nThinking about ")
    assert message["content"].endswith(f"</think>\n\n{plain}")
    assert "reasoning_content" not in message


# --- n and logprobs --------------------------------------------------------------------------------


async def test_n_gives_that_many_different_choices_and_usage_counts_them_all() -> None:
    one = await complete()

    reply = await complete(n=3)

    texts = [c["message"]["content"] for c in reply["choices"]]
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2]
    assert texts[0] == one["choices"][0]["message"]["content"] and len(set(texts)) == 3
    assert reply["usage"]["completion_tokens"] == sum(count_tokens(t) for t in texts)


async def test_n_streamed_chunks_carry_their_choice_index() -> None:
    texts = [c["message"]["content"] for c in (await complete(n=2))["choices"]]

    stream = await chunks(n=2)

    for index in (0, 1):
        assert "".join(d.get("content") or "" for d in deltas(stream, index)) == texts[index]
    finishes = [c["choices"][0] for c in stream if c["choices"][0]["finish_reason"]]
    assert [(f["index"], f["finish_reason"]) for f in finishes] == [(0, "stop"), (1, "stop")]


async def test_logprobs_cover_every_content_token() -> None:
    reply = await complete(logprobs=True, top_logprobs=3)

    choice = reply["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == choice["message"]["content"]
    assert len(entries) == reply["usage"]["completion_tokens"]
    for entry in entries:
        assert entry["logprob"] < 0 and bytes(entry["bytes"]).decode() == entry["token"]
        assert len(entry["top_logprobs"]) == 3 and entry["top_logprobs"][0]["token"] == entry["token"]
        assert [t["logprob"] for t in entry["top_logprobs"]] == sorted(
            (t["logprob"] for t in entry["top_logprobs"]), reverse=True
        )
    assert "logprobs" not in (await complete())["choices"][0]


async def test_streamed_logprobs_ride_with_their_tokens() -> None:
    entries = (await complete(logprobs=True))["choices"][0]["logprobs"]["content"]

    stream = await chunks(logprobs=True)

    streamed = [c["choices"][0]["logprobs"]["content"][0] for c in stream if c["choices"][0]["logprobs"]]
    assert streamed == entries and entries[0]["top_logprobs"] == []


# --- embeddings ------------------------------------------------------------------------------------


async def embed(**fields: Any) -> dict[str, Any]:
    return await core.embed({"model": "e", **fields}, FAST)


async def test_embeddings_are_deterministic_unit_vectors_per_text() -> None:
    reply = await embed(input=["hello world", "goodbye", "hello world"])

    vectors = [d["embedding"] for d in reply["data"]]
    assert [d["index"] for d in reply["data"]] == [0, 1, 2]
    assert all(len(v) == 8 and math.isclose(math.hypot(*v), 1.0, rel_tol=1e-6) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert reply["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert (await embed(input="hello world"))["data"][0]["embedding"] == vectors[0]


async def test_embeddings_take_dimensions_token_arrays_and_base64() -> None:
    floats = (await embed(input=[[1, 2, 3]], dimensions=5))["data"][0]["embedding"]
    packed = (await embed(input=[1, 2, 3], dimensions=5, encoding_format="base64"))["data"][0]["embedding"]

    assert len(floats) == 5
    assert list(struct.unpack("<5f", base64.b64decode(packed))) == floats


@pytest.mark.parametrize(
    "fields", [{}, {"input": []}, {"input": ""}, {"input": [None]}, {"input": "x", "dimensions": 0}]
)
async def test_bad_embedding_requests_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(core.SimulatorRequestError):
        await embed(**fields)


async def test_embeddings_play_status_faults() -> None:
    with pytest.raises(core.SimulatedHTTPError) as raised:
        await embed(input="x", simulate={"fault": "rate_limit", "retry_after_s": 2})

    assert raised.value.status == 429 and raised.value.headers == {"retry-after": "2"}
