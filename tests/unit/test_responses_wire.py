"""Responses API translation, both ways, without a server: input items to chat messages, tools and
options to chat fields, and a streamed answer to the numbered event sequence."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from moa_gateway.core.failures import Failure
from moa_gateway.core.types import Answer, CallRecord, Delta, MoaResult, Usage
from moa_gateway.wire.responses import chat_request, input_messages, parse_responses_request
from moa_gateway.wire.responses_output import ResponseFrame
from moa_gateway.wire.responses_stream import ResponseStream


def parse(**body: Any) -> Any:
    return parse_responses_request(orjson.dumps({"model": "moa", **body}))


def test_input_items_become_chat_messages() -> None:
    request = parse(
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Be kind."}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": '{"x": 1}'},
            {"type": "function_call", "call_id": "call_2", "name": "look", "arguments": '{"x": 2}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [{"type": "input_text", "text": "a dog"}],
            },
        ]
    )
    messages = input_messages(request)
    assert messages == [
        {"role": "developer", "content": "Be kind."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": '{"x": 1}'}},
                {"id": "call_2", "type": "function", "function": {"name": "look", "arguments": '{"x": 2}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "call_2", "content": "a dog"},
    ]


def test_options_map_to_their_chat_fields_and_nothing_responses_only_is_forwarded() -> None:
    request = parse(
        input="hi",
        instructions="Short.",
        tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        tool_choice={"type": "function", "name": "f"},
        parallel_tool_calls=False,
        max_output_tokens=50,
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        top_logprobs=2,
        store=False,
        include=["reasoning.encrypted_content"],
        truncation="auto",
        metadata={"a": "b"},
    )
    chat = chat_request(request, [{"role": "user", "content": "hi"}])
    assert chat.final_params() == {
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 50,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "verbosity": "low",
        "logprobs": True,
        "top_logprobs": 2,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice.type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(Failure) as caught:
        request = parse(**body)
        chat_request(request, input_messages(request))
    assert caught.value.param == param


def result_of(answer: Answer) -> MoaResult:
    return MoaResult("moa", answer, [CallRecord(2, "aggregator", "omega", "ok", 0.1, answer.usage)])


def test_a_stream_numbers_its_events_and_closes_each_item_before_the_next() -> None:
    stream = ResponseStream(ResponseFrame.of(parse(input="x")))
    events = stream.start()
    events += stream.delta(Delta(reasoning="hmm "))
    events += stream.delta(Delta(reasoning="ok"))
    events += stream.delta(Delta(text="Calling."))
    call = {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}
    events += stream.delta(Delta(tool_calls=[call]))
    events += stream.delta(Delta(tool_calls=[{"index": 0, "function": {"arguments": '{"a":'}}]))
    events += stream.delta(Delta(tool_calls=[{"index": 0, "function": {"arguments": " 1}"}}]))
    answer = Answer(
        "Calling.", "tool_calls", Usage(5, 7, reasoning_tokens=2), reasoning="hmm ok", tool_calls=[call]
    )
    events += stream.finish(result_of(answer))

    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][2] | {"id": None} == {
        "id": None,
        "type": "function_call",
        "call_id": "call_9",
        "name": "f",
        "arguments": '{"a": 1}',
        "status": "completed",
    }
    assert final["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 12,
        "cost": 0.0,
    }


def test_an_answer_that_never_streamed_is_sent_whole_at_the_end() -> None:
    stream = ResponseStream(ResponseFrame.of(parse(input="x")))
    events = stream.start() + stream.finish(result_of(Answer("All at once.", "length", Usage(1, 3))))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == ["All at once."]
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
