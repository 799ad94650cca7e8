"""The simulator told how much its models agree (`simulate.agree`), and as a reviewer of
`aggregation: rank`: a parseable ranking, steerable, or a malformed one on request."""

from __future__ import annotations

from typing import Any

import pytest

from moa_gateway.core.prompts import inject_references
from moa_gateway.core.ranking import RANK_PROMPT, read_ranking
from moa_gateway.sim import core
from tests.support.asks import ASK

FAST = core.SimProfile(ttft_ms=0, tokens_per_s=0)
MODELS = [f"m{i}" for i in range(40)]


async def text_of(model: str, simulate: dict[str, Any], messages: list[dict[str, Any]] = ASK) -> str:
    reply = await core.complete({"model": model, "messages": messages, "simulate": simulate}, FAST)
    content = reply["choices"][0]["message"]["content"]
    assert isinstance(content, str)
    return content


async def test_agree_sets_the_share_of_models_giving_the_common_answer() -> None:
    always = {await text_of(m, {"agree": 1}) for m in MODELS}
    never = {await text_of(m, {}) for m in MODELS}
    half = [await text_of(m, {"agree": 0.5}) for m in MODELS]

    assert len(always) == 1 and next(iter(always)).startswith("[panel] On 'Why is the sky blue?':")
    assert len(never) == len(MODELS)  # each its own answer
    common = next(iter(always))
    assert 12 <= half.count(common) <= 28  # about half of 40 (the draw is a hash: fixed, not flaky)
    assert half == [await text_of(m, {"agree": 0.5}) for m in MODELS]  # the same draw again


@pytest.mark.parametrize("bad", [-0.1, 1.5, "all", True])
async def test_agree_must_be_a_share(bad: Any) -> None:
    with pytest.raises(core.SimulatorRequestError, match=r"'simulate\.agree' is a number from 0 to 1"):
        await text_of("m1", {"agree": bad})


def ranking_request(answers: list[str]) -> list[dict[str, Any]]:
    return inject_references(ASK, answers, RANK_PROMPT)


ANSWERS = ["[a] short", "[b] a longer answer with many more distinct words in it", "[c] middling answer here"]


async def test_a_ranking_request_gets_a_ranking_the_gateway_reads_the_same_in_any_order() -> None:
    forward = await text_of("r", {}, ranking_request(ANSWERS))
    backward = await text_of("r", {}, ranking_request(ANSWERS[::-1]))

    best_first = [ANSWERS[i] for i in read_ranking(forward, 3)]
    reversed_best_first = [ANSWERS[::-1][i] for i in read_ranking(backward, 3)]
    assert best_first == reversed_best_first and sorted(best_first) == sorted(ANSWERS)
    assert best_first[0] == ANSWERS[1]  # the broadest answer


async def test_a_ranking_can_be_steered_or_malformed() -> None:
    preferred = await text_of("r", {"prefer": "a"}, ranking_request(ANSWERS))
    malformed = await text_of("r", {"ranking": "malformed"}, ranking_request(ANSWERS))
    plain = await text_of("r", {"ranking": "malformed"})

    assert read_ranking(preferred, 3)[0] == 0
    assert "[[" not in malformed
    assert plain.startswith("[r] On 'Why is the sky blue?':")  # only a ranking request is malformed
    with pytest.raises(core.SimulatorRequestError, match=r"simulate\.ranking"):
        await text_of("r", {"ranking": "shuffled"}, ranking_request(ANSWERS))
