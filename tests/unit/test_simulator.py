"""The simulator: deterministic answers, honest token counts, timing options, references used."""

from __future__ import annotations

import pytest

from moa_gateway.core.final.select import SELECT_PROMPT
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, inject_references
from moa_gateway.core.tokens import count_prompt_tokens, count_tokens
from moa_gateway.sim import core
from tests.support.asks import ASK

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)


async def ask(model: str, messages: list[dict[str, str]], **extra: object) -> str:
    reply = await core.complete({"model": model, "messages": messages, **extra}, FAST)
    content = reply["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


async def test_answers_are_deterministic_and_depend_on_model_and_conversation() -> None:
    first = await ask("a", ASK)

    assert first == await ask("a", ASK)
    assert first != await ask("b", ASK)
    assert first != await ask("a", [{"role": "user", "content": "Why is grass green?"}])
    assert "Why is the sky blue?" in first


async def test_usage_counts_the_tokens_it_sent() -> None:
    reply = await core.complete({"model": "a", "messages": ASK}, FAST)

    usage = reply["usage"]
    assert usage["completion_tokens"] == count_tokens(reply["choices"][0]["message"]["content"])
    assert usage["prompt_tokens"] == count_prompt_tokens(ASK)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    reply = await core.complete({"model": "a", "messages": ASK, "max_tokens": 5}, FAST)

    assert reply["usage"]["completion_tokens"] == 5
    assert count_tokens(reply["choices"][0]["message"]["content"]) == 5
    assert reply["choices"][0]["finish_reason"] == "length"


async def test_stream_sends_the_same_text_in_token_chunks_with_usage_last() -> None:
    body = {"model": "a", "messages": ASK, "stream_options": {"include_usage": True}}
    chunks = [c async for c in core.stream(body, FAST)]

    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == await ask("a", ASK)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == count_tokens(text)


# The simulator reads the reference block's heading as documented, without importing the core's prompts:
# every prompt the core sends references under must still be read as references.
@pytest.mark.parametrize("prompt", [DEFAULT_AGGREGATOR_PROMPT, SELECT_PROMPT])
async def test_aggregator_quotes_every_reference_and_the_question(prompt: str) -> None:
    refs = [await ask("alpha", ASK), await ask("beta", ASK)]

    answer = await ask("omega", inject_references(ASK, refs, prompt))

    assert answer.startswith("[omega] Synthesis of 2 responses on 'Why is the sky blue?':")
    for i, ref in enumerate(refs, 1):
        first_words = " ".join(ref.rsplit(":", 1)[1].split()[:4])
        assert f"({i}) {ref[1 : ref.index(']')]}: {first_words}" in answer


async def test_output_tokens_option_fixes_the_length() -> None:
    reply = await core.complete({"model": "a", "messages": ASK, "simulate": {"output_tokens": 10}}, FAST)

    # the header "[a] On '<question>':" is part of the answer; 10 words follow it
    assert reply["usage"]["completion_tokens"] == count_tokens("[a] On 'Why is the sky blue?':") + 10


@pytest.mark.parametrize(
    "body",
    [
        {"messages": ASK},
        {"model": "a"},
        {"model": "a", "messages": []},
        {"model": "a", "messages": ASK, "simulate": {"ttft_ms": "x"}},
    ],
    ids=["no-model", "no-messages", "empty-messages", "bad-simulate"],
)
async def test_bad_bodies_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(core.SimulatorRequestError):
        await core.complete(body, FAST)
