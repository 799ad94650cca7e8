"""Upstream answers beyond text: several choices, tool calls assembled from stream deltas, reasoning,
logprobs, reasoning token counts; and malformed ones failing as `bad_response`."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.upstream.answers import StreamedAnswer, completion_choices, reported_usage


def test_every_choice_of_a_completion_is_kept_in_index_order() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    payload: dict[str, Any] = {
        "choices": [
            {"index": 1, "message": {"content": "second"}, "finish_reason": "length"},
            {
                "index": 0,
                "message": {"content": None, "tool_calls": [call], "reasoning_content": "hmm"},
                "finish_reason": "tool_calls",
                "logprobs": {"content": [{"token": "x", "logprob": -0.1}]},
            },
        ]
    }
    first, second = completion_choices("m", payload)

    assert (first.text, first.finish_reason, first.tool_calls, first.reasoning) == (
        "",
        "tool_calls",
        [call],
        "hmm",
    )
    assert first.logprobs == {"content": [{"token": "x", "logprob": -0.1}]}
    assert (second.text, second.finish_reason) == ("second", "length")


def test_openrouter_style_reasoning_field_is_read_too() -> None:
    (choice,) = completion_choices("m", {"choices": [{"message": {"content": "a", "reasoning": "r"}}]})
    assert choice.reasoning == "r"


def test_streamed_tool_call_deltas_are_assembled_like_the_sdk_does() -> None:
    answer = StreamedAnswer("m")
    head = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [head]}}]},
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"P"}'}}]}}
            ]
        },
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    deltas = [d for chunk in chunks for d in answer.feed(chunk)]

    assert [d.tool_calls for d in deltas] == [c["choices"][0]["delta"]["tool_calls"] for c in chunks[:3]]
    (choice,) = answer.choices()
    assert choice.finish_reason == "tool_calls"
    assert choice.tool_calls == [
        {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"P"}'}}
    ]
    assert answer.started


def test_streamed_choices_reasoning_and_logprobs_are_kept_apart() -> None:
    answer = StreamedAnswer("m")
    lp = {"content": [{"token": "a", "logprob": -1.0}]}
    answer.feed({"choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]})
    answer.feed({"choices": [{"index": 1, "delta": {"content": "B"}, "logprobs": lp}]})
    answer.feed(
        {"choices": [{"index": 0, "delta": {"content": "A"}, "logprobs": lp, "finish_reason": "stop"}]}
    )

    first, second = answer.choices()
    assert (first.text, first.reasoning, first.logprobs) == ("A", "think ", lp)
    assert (second.text, second.reasoning, second.logprobs) == ("B", None, lp)


def test_reasoning_tokens_are_counted() -> None:
    usage = reported_usage(
        "m",
        {"prompt_tokens": 5, "completion_tokens": 50, "completion_tokens_details": {"reasoning_tokens": 40}},
    )
    assert usage is not None and usage.reasoning_tokens == 40


@pytest.mark.parametrize(
    "payload",
    [
        {"choices": [{"message": {"content": "a", "tool_calls": "f()"}}]},
        {"choices": [{"message": {"content": "a", "tool_calls": ["f"]}}]},
        {"choices": [{"index": -1, "message": {"content": "a"}}]},
        {"choices": [{"index": True, "message": {"content": "a"}}]},
        {"choices": [{"message": {"content": "a", "reasoning_content": 3}}]},
    ],
    ids=["tool-calls-string", "tool-call-not-object", "negative-index", "bool-index", "reasoning-number"],
)
def test_malformed_agent_fields_fail_the_call(payload: dict[str, Any]) -> None:
    with pytest.raises(Failure) as caught:
        completion_choices("m", payload)
    assert caught.value.kind == FailureKind.BAD_RESPONSE
