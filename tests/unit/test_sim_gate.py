"""The simulator as a gate model: the confidence it reports when asked, how much its samples agree,
and a slow judge (`simulate.confidence`, `agreement`, `judge_delay_ms`)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from moa_gateway.core.gate import CONFIDENCE_INSTRUCTION, self_reported
from moa_gateway.eval.judge import load_prompt
from moa_gateway.sim import core
from tests.support.asks import ASK

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)
ASKED = [{"role": "system", "content": CONFIDENCE_INSTRUCTION}, *ASK]


async def text(messages: list[Any], seed: int | None = None, **simulate: Any) -> str:
    body: dict[str, Any] = {"model": "g", "messages": messages, "simulate": simulate}
    if seed is not None:
        body["seed"] = seed
    reply = await core.complete(body, FAST)
    content = reply["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


async def test_asked_for_a_confidence_it_ends_the_answer_with_the_one_it_was_told() -> None:
    told = await text(ASKED, confidence=0.37)
    own = self_reported(await text(ASKED))  # not told: the question's own, the same each time
    malformed = await text(ASKED, confidence="very")

    assert self_reported(told).confidence == 0.37 and told.count("Confidence") == 1
    assert self_reported(told).text.startswith("[g] On 'Why is the sky blue?': ")
    assert own.confidence is not None and 0.4 <= own.confidence < 1
    assert self_reported(await text(ASKED)) == own
    assert malformed.endswith("\nConfidence: very") and self_reported(malformed).confidence is None
    assert "Confidence" not in await text(ASK, confidence=0.9)  # not asked: no line


async def test_agreement_makes_seeded_samples_agree_or_not() -> None:
    seeds = range(8)
    agreeing = {await text(ASK, seed, agreement=1) for seed in seeds}
    apart = {await text(ASK, seed, agreement=0) for seed in seeds}
    default = {await text(ASK, seed) for seed in seeds}
    some = [await text(ASK, seed, agreement=0.5) for seed in range(40)]

    assert len(agreeing) == 1 and len(apart) == 8 and len(default) == 8
    shared = await text(ASK, agreement=1)
    assert 5 < some.count(shared) < 35  # about half give the shared answer


@pytest.mark.parametrize("bad", [{"confidence": 1.5}, {"confidence": True}, {"agreement": "all"}])
async def test_bad_gate_options_are_request_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(core.SimulatorRequestError):
        await text(ASK, **bad)


async def test_judge_delay_slows_verdicts_only() -> None:
    verdict_prompt = load_prompt("pairwise").messages("Q?", ("one answer", "another answer"))
    body: dict[str, Any] = {"model": "j", "messages": verdict_prompt, "simulate": {"judge_delay_ms": 300}}

    started = time.perf_counter()
    verdict = await core.complete(body, FAST)
    judged_s = time.perf_counter() - started
    started = time.perf_counter()
    await core.complete({**body, "messages": ASK}, FAST)
    answered_s = time.perf_counter() - started

    assert "[[" in verdict["choices"][0]["message"]["content"]
    assert judged_s >= 0.3 and answered_s < 0.3
