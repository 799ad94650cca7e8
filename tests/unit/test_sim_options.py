"""The simulator's `simulate.answer` (a fixed answer text) and `simulate.context_window` (OpenAI's 400)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from moa_gateway.config import SimulatedProvider
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.tokens import count_prompt_tokens, count_tokens
from moa_gateway.sim import core
from moa_gateway.sim.text import answer_text
from moa_gateway.upstream.providers.simulated import SimulatedTransport
from tests.support.asks import ASK_CAPITAL

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)
ANSWER = "The capital of France is Paris, of course."
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
}


def body(simulate: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "a", "messages": ASK_CAPITAL, "simulate": simulate, **extra}


async def test_answer_fixes_the_content_and_usage_counts_it() -> None:
    reply = await core.complete(body({"answer": ANSWER}), FAST)

    choice = reply["choices"][0]
    assert choice["message"]["content"] == ANSWER and choice["finish_reason"] == "stop"
    assert reply["usage"]["completion_tokens"] == count_tokens(ANSWER)
    assert reply["usage"]["prompt_tokens"] == count_prompt_tokens(ASK_CAPITAL)


async def test_answer_is_the_same_for_every_model_so_proposers_agree() -> None:
    answers = [
        (await core.complete({**body({"answer": ANSWER}), "model": m}, FAST))["choices"][0]["message"]
        for m in ("alpha", "beta", "gamma")
    ]

    assert {a["content"] for a in answers} == {ANSWER}


async def test_answer_is_streamed_a_token_per_chunk() -> None:
    request = body({"answer": ANSWER}, stream_options={"include_usage": True})
    chunks = [c async for c in core.stream(request, FAST)]

    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]][1:-1]
    assert "".join(pieces) == ANSWER and len(pieces) == count_tokens(ANSWER)
    assert chunks[-1]["usage"]["completion_tokens"] == count_tokens(ANSWER)


async def test_answer_keeps_its_spaces_and_is_cut_by_max_tokens() -> None:
    assert (await core.complete(body({"answer": "  spaced  out "}), FAST))["choices"][0]["message"][
        "content"
    ] == "  spaced  out "
    cut = await core.complete(body({"answer": ANSWER}, max_tokens=3), FAST)

    assert cut["choices"][0]["message"]["content"] == "The capital of"
    assert cut["choices"][0]["finish_reason"] == "length"


async def test_an_empty_answer_is_an_empty_content() -> None:
    reply = await core.complete(body({"answer": ""}), FAST)

    assert reply["choices"][0]["message"]["content"] == ""
    assert reply["usage"]["completion_tokens"] == 0


async def test_answer_replaces_only_the_text() -> None:
    called = await core.complete(body({"answer": ANSWER}, tools=[TOOL]), FAST)
    wrapped = await core.complete(body({"answer": ANSWER}, response_format={"type": "json_object"}), FAST)
    thought = await core.complete(body({"answer": ANSWER, "reasoning": True, "think_tags": True}), FAST)
    several = await core.complete(body({"answer": ANSWER}, n=2), FAST)

    assert called["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert called["choices"][0]["message"]["content"] is None
    assert json.loads(wrapped["choices"][0]["message"]["content"]) == {"answer": ANSWER}
    message = thought["choices"][0]["message"]
    assert message["reasoning_content"] and message["content"].startswith("<think>")
    assert message["content"].endswith(f"</think>\n\n{ANSWER}")
    contents = [c["message"]["content"] for c in several["choices"]]
    assert contents[0] == ANSWER and contents[1] != ANSWER


async def test_answer_wins_over_the_judge() -> None:
    prompt = "[The Start of Assistant's Answer]\nParis.\n[The End of Assistant's Answer]"
    request = {"model": "judge", "messages": [{"role": "user", "content": prompt}]}

    reply = await core.complete({**request, "simulate": {"answer": "Rating: [[7]]"}}, FAST)

    assert reply["choices"][0]["message"]["content"] == "Rating: [[7]]"


async def test_context_window_answers_openais_400_when_the_request_does_not_fit() -> None:
    prompt = count_prompt_tokens(ASK_CAPITAL)

    with pytest.raises(core.SimulatedHTTPError) as raised:
        await core.complete(body({"context_window": prompt - 1}), FAST)

    assert raised.value.status == 400 and raised.value.media_type == "application/json"
    assert orjson.loads(raised.value.body) == {
        "error": {
            "message": f"This model's maximum context length is {prompt - 1} tokens. However, your "
            f"messages resulted in {prompt} tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }


async def test_context_window_counts_max_tokens_and_lets_a_fitting_request_through() -> None:
    prompt = count_prompt_tokens(ASK_CAPITAL)

    fits = await core.complete(body({"context_window": prompt + 10}, max_tokens=10), FAST)
    assert fits["choices"][0]["message"]["content"]
    for limit in ({"max_tokens": 11}, {"max_completion_tokens": 11}):
        with pytest.raises(core.SimulatedHTTPError) as raised:
            await core.complete(body({"context_window": prompt + 10}, **limit), FAST)
        assert f"resulted in {prompt + 11} tokens" in orjson.loads(raised.value.body)["error"]["message"]
    with pytest.raises(core.SimulatedHTTPError):  # streamed: before any chunk
        await anext(core.stream(body({"context_window": prompt - 1}), FAST))


@pytest.mark.parametrize(
    "simulate",
    [
        {"answer": 42},
        {"answer": ["a"]},
        {"context_window": "100"},
        {"context_window": 0},
        {"context_window": -5},
        {"context_window": 1.5},
        {"context_window": True},
    ],
)
async def test_wrong_types_are_request_errors(simulate: dict[str, Any]) -> None:
    with pytest.raises(core.SimulatorRequestError, match="simulate"):
        await core.complete(body(simulate), FAST)


async def test_the_in_process_provider_honours_both_options() -> None:
    transport = SimulatedTransport(SimulatedProvider(type="simulated", ttft_ms=0, tokens_per_s=0))

    reply = await transport.complete("alpha", orjson.dumps(body({"answer": ANSWER})))
    streamed = [c async for c in transport.stream("alpha", orjson.dumps(body({"answer": ANSWER})))]
    with pytest.raises(Failure) as raised:
        await transport.complete("alpha", orjson.dumps(body({"context_window": 1})))

    assert reply["choices"][0]["message"]["content"] == ANSWER
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed if c["choices"]) == ANSWER
    failure = raised.value
    assert failure.kind is FailureKind.REJECTED and failure.upstream_status == 400
    assert "maximum context length is 1 tokens" in failure.message


def test_arithmetic_questions_get_one_canonical_answer_from_every_model() -> None:
    asked = [{"role": "user", "content": "What is 12 * 3?"}]
    assert {answer_text(model, asked, None, None) for model in ("a", "b", "c")} == {"36"}
    assert answer_text("a", [{"role": "user", "content": "Why is 12 * 3 nice?"}], None, None) != "36"
