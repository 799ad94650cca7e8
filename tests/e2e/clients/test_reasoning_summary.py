"""`reasoning.summary` on `/v1/responses`: reasoning items carry the aggregator's reasoning as a
`summary_text` part (what the AI SDK and Codex read), JSON and streamed with OpenAI's
`response.reasoning_summary_*` events; without it, `summary` stays empty as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.gateways import Gateway

SUMMARY_EVENTS = [
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


@pytest.mark.parametrize("summary", ["auto", "concise", "detailed"])
def test_a_summary_asked_for_is_the_reasoning(client: openai.OpenAI, summary: Any) -> None:
    response = client.responses.create(
        model="reasoning", input="Why is the sky blue?", reasoning={"summary": summary}
    )
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.content and reasoning.content[0].text
    assert [(s.type, s.text) for s in reasoning.summary] == [("summary_text", reasoning.content[0].text)]
    assert response.reasoning is not None and response.reasoning.summary == summary


def test_without_reasoning_summary_the_summary_stays_empty(client: openai.OpenAI) -> None:
    response = client.responses.create(model="reasoning", input="Why is the sky blue?")
    reasoning = response.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary == [] and reasoning.content


def test_the_summary_streams_with_openais_events(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="reasoning", input="Why is the sky blue?", reasoning={"summary": "auto"}, stream=True
        )
    )
    summary_events: list[Any] = [e for e in events if e.type.startswith("response.reasoning_summary_")]
    kinds = [e.type for e in summary_events]
    assert kinds[0] == SUMMARY_EVENTS[0] and kinds[-2:] == SUMMARY_EVENTS[2:]
    assert set(kinds[1:-2]) == {SUMMARY_EVENTS[1]}
    final = events[-1]
    assert final.type == "response.completed"
    reasoning = final.response.output[0]
    assert reasoning.type == "reasoning"
    assert {(e.item_id, e.output_index, e.summary_index) for e in summary_events} == {(reasoning.id, 0, 0)}
    text = "".join(e.delta for e in summary_events if e.type == SUMMARY_EVENTS[1])
    assert text and reasoning.summary[0].text == text == summary_events[-2].text
    assert summary_events[-1].part.text == text
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "reasoning" and added.item.summary == []


def test_an_unknown_summary_is_a_400_naming_it(client: openai.OpenAI, gateway: Gateway) -> None:
    verbose: Any = {"summary": "verbose"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="reasoning", input="hi", reasoning=verbose)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "reasoning.summary"
    assert gateway.recorder.bodies() == []
