"""An upstream answering in the legacy `function_call` shape: its call becomes a tool call (with an id the
client can answer), in a completion and assembled from stream pieces; a malformed one is a `bad_response`."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.upstream.answers import StreamedAnswer, completion_choices


def test_a_completions_function_call_is_its_tool_call() -> None:
    message = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": '{"x":1}'}}
    payload = {"choices": [{"index": 0, "message": message, "finish_reason": "function_call"}]}

    [choice] = completion_choices("m", payload)

    assert choice.finish_reason == "tool_calls"
    assert choice.tool_calls is not None and len(choice.tool_calls) == 1
    call = choice.tool_calls[0]
    assert call["id"].startswith("call_") and len(call["id"]) > len("call_")
    assert (call["type"], call["function"]) == ("function", {"name": "f", "arguments": '{"x":1}'})
    # Beside tool calls (some servers send both), the legacy field is the same call again: not added.
    both = {**message, "tool_calls": [call]}
    [choice] = completion_choices("m", {"choices": [{"message": both, "finish_reason": "tool_calls"}]})
    assert choice.tool_calls == [call]


def test_a_streamed_function_call_is_assembled_as_one_tool_call() -> None:
    answer = StreamedAnswer("m")
    pieces = [{"name": "f", "arguments": ""}, {"arguments": '{"x"'}, {"arguments": ":1}"}]
    deltas = [
        delta
        for piece in pieces
        for delta in answer.feed({"choices": [{"index": 0, "delta": {"function_call": piece}}]})
    ]
    answer.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "function_call"}]})

    [choice] = answer.choices()
    assert choice.finish_reason == "tool_calls"
    assert choice.tool_calls is not None and len(choice.tool_calls) == 1
    call = choice.tool_calls[0]
    assert call["function"] == {"name": "f", "arguments": '{"x":1}'}
    first, *rest = [delta.tool_calls for delta in deltas]
    assert first == [{"index": 0, "id": call["id"], "type": "function", "function": pieces[0]}]
    assert rest == [[{"index": 0, "function": piece}] for piece in pieces[1:]]


@pytest.mark.parametrize(
    "function_call",
    ["f()", {"arguments": "{}"}, {"name": "", "arguments": "{}"}, {"name": "f", "arguments": {"x": 1}}],
    ids=["string", "no-name", "empty-name", "arguments-object"],
)
def test_a_malformed_function_call_fails_the_call(function_call: Any) -> None:
    message = {"content": None, "function_call": function_call}
    with pytest.raises(Failure) as caught:
        completion_choices("m", {"choices": [{"message": message}]})
    assert caught.value.kind == FailureKind.BAD_RESPONSE


@pytest.mark.parametrize("piece", ["f", {"name": 5}, {"arguments": ["{}"]}])
def test_a_malformed_streamed_function_call_fails_the_call(piece: Any) -> None:
    with pytest.raises(Failure) as caught:
        StreamedAnswer("m").feed({"choices": [{"index": 0, "delta": {"function_call": piece}}]})
    assert caught.value.kind == FailureKind.BAD_RESPONSE
