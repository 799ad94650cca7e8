"""`item_reference` input items through the openai SDK: earlier output named by id (as the AI SDK sends
it with `store`) is found in the stored responses and reaches the model as the turn it was; reasoning
that cannot be found is dropped; anything else unknown is OpenAI's 404."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.gateways import Gateway


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def ref(item_id: str | None) -> Any:
    return {"type": "item_reference", "id": item_id}


def test_a_referenced_answer_is_the_assistant_turn_it_was(client: openai.OpenAI, gateway: Gateway) -> None:
    first = client.responses.create(model="alpha", input="Name a colour.")
    [message] = first.output
    gateway.recorder.clear()
    client.responses.create(
        model="alpha",
        input=[
            {"role": "user", "content": "Name a colour."},
            ref(message.id),
            {"role": "user", "content": "Why that one?"},
        ],
    )
    [sent] = gateway.recorder.sent_to("alpha")
    assert sent["messages"] == [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "Why that one?"},
    ]


def test_streamed_output_and_tool_calls_are_referenced_too(client: openai.OpenAI, gateway: Gateway) -> None:
    weather: Any = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    events = list(client.responses.create(model="alpha", input="Weather?", tools=[weather], stream=True))
    completed = events[-1]
    assert completed.type == "response.completed"
    [call] = completed.response.output
    assert call.type == "function_call"
    gateway.recorder.clear()
    client.responses.create(
        model="alpha",
        input=[
            {"role": "user", "content": "Weather?"},
            ref(call.id),
            {"type": "function_call_output", "call_id": call.call_id, "output": "18 C"},
        ],
        tools=[weather],
    )
    [sent] = gateway.recorder.sent_to("alpha")
    assistant, tool = sent["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == call.call_id
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tool == {"role": "tool", "tool_call_id": call.call_id, "content": "18 C"}


def test_reasoning_references_are_dropped_found_or_not(client: openai.OpenAI, gateway: Gateway) -> None:
    first = client.responses.create(model="reasoning", input="Think.")
    reasoning, message = first.output
    assert reasoning.type == "reasoning"
    gateway.recorder.clear()
    second = client.responses.create(
        model="reasoner",
        input=[
            {"role": "user", "content": "Think."},
            ref(reasoning.id),
            ref("rs_0123456789abcdef0123456789abcdef0123456789abcdef"),  # never ours: dropped too
            ref(message.id),
            {"role": "user", "content": "More."},
        ],
    )
    assert second.status == "completed"
    [sent] = gateway.recorder.sent_to("reasoner")
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == first.output_text


@pytest.mark.parametrize("how", ["unknown", "not stored", "deleted"])
def test_an_item_that_is_not_stored_is_a_404(client: openai.OpenAI, gateway: Gateway, how: str) -> None:
    if how == "unknown":
        item_id = "msg_0123456789abcdef0123456789abcdef0123456789abcdef"
    else:
        earlier = client.responses.create(model="alpha", input="hi", store=how != "not stored")
        item_id = str(earlier.output[0].id)
        if how == "deleted":
            client.responses.delete(earlier.id)
    gateway.recorder.clear()
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="alpha", input=[{"role": "user", "content": "hi"}, ref(item_id)])
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "input[1]" and item_id in body["message"]
    assert gateway.recorder.bodies() == []


def test_a_reference_without_an_id_is_a_400(client: openai.OpenAI) -> None:
    nameless: Any = {"type": "item_reference"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="alpha", input=[nameless])
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "input[0].id"
