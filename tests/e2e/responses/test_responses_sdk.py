"""`POST /v1/responses` through real HTTP with the official openai SDK: plain, instructions, streamed
(the event sequence and its numbers), function tools and their outputs, continuation, retrieval and
deletion, structured output, reasoning, length cuts and failures. The recording upstream
shows what the aggregator and the proposers were sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel

from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def test_plain_input_runs_the_pipeline_and_answers_a_response(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    response = client.responses.create(model="moa", input="Why is the sky blue?")

    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.error is None
    assert response.output_text.startswith("[omega] Synthesis of 3 responses on 'Why is the sky blue?'")
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.content[0].type == "output_text" and message.content[0].text == response.output_text
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    moa = (response.model_extra or {})["moa"]
    assert moa["pipeline"] == "moa" and len(moa["calls"]) == 7  # 2 layers of 3, and the aggregator
    assert len(gateway.recorder.sent_to("omega")) == 1


def test_a_model_alias_is_one_direct_call(client: openai.OpenAI, gateway: Gateway) -> None:
    response = client.responses.create(model="alpha", input=[{"role": "user", "content": "hello there"}])
    assert response.output_text.startswith("[alpha] On 'hello there'")
    assert [b["model"] for b in gateway.recorder.bodies()] == ["alpha"]


def test_instructions_are_the_system_message_and_content_parts_are_text(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    client.responses.create(
        model="moa-1",
        instructions="Answer in one sentence.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is MoA?"}]}],
        temperature=0.3,
        max_output_tokens=400,
    )
    [aggregator] = gateway.recorder.sent_to("omega")
    system, user = aggregator["messages"]
    assert system["role"] == "system" and system["content"].startswith("Answer in one sentence.\n\n")
    assert "Responses from models:" in system["content"]
    assert user == {"role": "user", "content": "What is MoA?"}
    assert aggregator["temperature"] == 0.3 and aggregator["max_completion_tokens"] == 400
    for proposer in PROPOSERS:
        [sent] = gateway.recorder.sent_to(proposer)
        assert sent["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
        assert sent["temperature"] == 0.3
    assert not any(k in aggregator for k in ("input", "instructions", "max_output_tokens", "store"))


def _events(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    return list(client.responses.create(stream=True, **kwargs))


def test_a_stream_sends_the_documented_events_numbered_in_order(client: openai.OpenAI) -> None:
    events = _events(client, model="moa", input="Why is the sky blue?")

    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert len(deltas) >= 1
    created, final = events[0].response, events[-1].response
    assert created.status == "in_progress" and created.output == [] and created.id == final.id
    text = "".join(d.delta for d in deltas)
    item_id = events[2].item.id
    assert {d.item_id for d in deltas} == {item_id} and final.output[0].id == item_id
    assert events[-4].text == text == final.output_text
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens > 0
    assert (final.model_extra or {})["moa"]["pipeline"] == "moa"


def test_function_tools_round_trip_through_function_call_output(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    first = client.responses.create(model="moa", input="What is the weather in Paris?", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    [sent] = gateway.recorder.sent_to("omega")
    assert sent["tools"] == [
        {"type": "function", "function": {k: WEATHER[k] for k in ("name", "description", "parameters")}}
    ]
    assert all("tools" not in gateway.recorder.sent_to(p)[0] for p in PROPOSERS)

    gateway.recorder.clear()
    history: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}, *first.output]
    result: Any = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'}
    second = client.responses.create(model="moa", input=[*history, result], tools=[WEATHER], store=False)
    assert second.output_text.endswith('Based on the tool result: {"temp_c": 18}')
    [sent] = gateway.recorder.sent_to("omega")
    assert sent["messages"][1:] == [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.call_id, "content": '{"temp_c": 18}'},
    ]


def test_a_streamed_function_call_sends_its_arguments_in_deltas(client: openai.OpenAI) -> None:
    events = _events(client, model="moa", input="Weather in Rome?", tools=[WEATHER], tool_choice="required")
    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = events[-3]
    assert done.arguments == arguments and done.name == "get_weather"
    [call] = events[-1].response.output
    assert call.type == "function_call" and call.arguments == arguments and call.id == events[2].item.id


def test_functions_of_a_namespace_tool_reach_the_aggregator_flat_and_calls_name_their_namespace(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    tools: Any = [{"type": "namespace", "name": "crm", "description": "Customer records", "tools": [WEATHER]}]
    response = client.responses.create(model="moa-1", input="Weather in Oslo?", tools=tools)
    [call] = response.output
    assert call.type == "function_call" and call.name == "get_weather" and call.namespace == "crm"
    [sent] = gateway.recorder.sent_to("omega")
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    events = _events(client, model="moa-1", input="Weather in Oslo?", tools=tools)
    assert events[2].item.namespace == "crm" and events[-1].response.output[0].namespace == "crm"


def test_previous_response_id_continues_the_stored_conversation(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    first = client.responses.create(model="moa-1", instructions="Be terse.", input="My name is Ada.")
    gateway.recorder.clear()
    second = client.responses.create(model="moa-1", previous_response_id=first.id, input="What is my name?")

    assert second.previous_response_id == first.id
    [sent] = gateway.recorder.sent_to("omega")
    assert sent["messages"][0]["role"] == "system"  # the references only: instructions are not carried
    assert not sent["messages"][0]["content"].startswith("Be terse.")
    assert sent["messages"][1:] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    gateway.recorder.clear()
    client.responses.create(model="alpha", previous_response_id=second.id, input="And again?")
    [sent] = gateway.recorder.sent_to("alpha")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user", "assistant", "user"]


def test_retrieve_returns_the_stored_response_and_delete_removes_it(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    created = client.responses.create(model="moa-1", input="Keep this.", metadata={"ticket": "42"})
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.output_text == created.output_text
    assert retrieved.metadata == {"ticket": "42"} and retrieved.usage == created.usage

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert caught.value.body == {
        "message": f"Response with id '{created.id}' not found.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="moa-1", previous_response_id=created.id, input="and?")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "previous_response_id"


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    response = client.responses.create(model="alpha", input="Forget this.", store=False)
    assert response.to_dict()["store"] is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_a_streamed_response_is_stored_too(client: openai.OpenAI) -> None:
    events = _events(client, model="moa-1", input="Stream and keep.")
    final = events[-1].response
    assert client.responses.retrieve(final.id).output_text == final.output_text != ""


def test_text_format_json_schema_reaches_the_aggregator_as_response_format(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    text_format: Any = {"type": "json_schema", "name": "city", "schema": schema, "strict": True}
    response = client.responses.create(
        model="moa", input="Largest city of France?", text={"format": text_format}
    )

    jsonschema.validate(json.loads(response.output_text), schema)
    [sent] = gateway.recorder.sent_to("omega")
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": schema, "strict": True},
    }
    assert all("response_format" not in gateway.recorder.sent_to(p)[0] for p in PROPOSERS)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


def test_reasoning_effort_reaches_the_aggregator_and_reasoning_comes_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    response = client.responses.create(model="moa-1", input="Think about MoA.", reasoning={"effort": "high"})

    [sent] = gateway.recorder.sent_to("omega")
    assert sent["reasoning_effort"] == "high"
    assert all("reasoning_effort" not in gateway.recorder.sent_to(p)[0] for p in PROPOSERS)
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert reasoning.content[0].text.startswith("Thinking about")
    assert message.type == "message" and response.output_text.startswith("[omega]")
    assert response.usage is not None and response.usage.output_tokens_details.reasoning_tokens > 0
    assert response.reasoning is not None and response.reasoning.effort == "high"

    events = _events(client, model="moa-1", input="Think about MoA.", reasoning={"effort": "low"})
    types = [e.type for e in events]
    first_reasoning = types.index("response.reasoning_text.delta")
    assert (
        first_reasoning
        < types.index("response.reasoning_text.done")
        < types.index("response.output_text.delta")
    )
    assert [i.type for i in events[-1].response.output] == ["reasoning", "message"]


def test_a_length_cut_is_an_incomplete_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model="alpha", input="Tell me a long story.", max_output_tokens=3)
    assert response.status == "incomplete"
    assert (
        response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    )
    events = _events(client, model="alpha", input="Tell me a long story.", max_output_tokens=3)
    assert events[-1].type == "response.incomplete" and events[-1].response.status == "incomplete"


def test_errors_before_the_stream_keep_their_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="hi", stream=True)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "model_not_found"
    robot: Any = [{"role": "robot", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="moa", input=robot)
    assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "input[0].role"


def test_a_failure_after_the_first_event_is_response_failed(client: openai.OpenAI) -> None:
    events = _events(client, model="broken", input="hello")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and "response.output_text.delta" in [e.type for e in events]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error is not None and failed.response.error.code == "upstream_error"
    assert "cut" in failed.response.error.message


def test_the_request_metrics_count_responses(client: openai.OpenAI, gateway: Gateway) -> None:
    client.responses.create(model="moa-1", input="count me")
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'moa_requests_total{endpoint="responses",model="moa-1",status="200"}' in metrics


def test_the_sdk_stream_helper_and_parse_accept_the_events_and_the_schema_output(
    client: openai.OpenAI,
) -> None:
    """`responses.stream()` rebuilds the response from the events and checks their order; `parse()`
    sends a pydantic model as `text.format` and parses the answer into it."""
    with client.responses.stream(model="moa-1", input="hi", reasoning={"effort": "low"}) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "message"] and "".join(deltas) == final.output_text

    class City(BaseModel):
        name: str
        population: int

    parsed = client.responses.parse(model="moa-1", input="Largest city of France?", text_format=City)
    assert isinstance(parsed.output_parsed, City)
