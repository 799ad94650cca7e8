"""`aggregation: rank`: reviewers rank the others' proposals, anonymised and shuffled per reviewer; the
rankings add up by Borda count; the best go to the aggregator, or the best one is the answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from moa_gateway.config import ConfigError, parse_config
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.ranking import (
    MalformedRanking,
    Review,
    borda,
    read_ranking,
    request_seed,
    shuffled,
)
from moa_gateway.core.reports import DroppedRanking, RankedProposal
from moa_gateway.core.runner import Runner, collect
from moa_gateway.core.types import Answer, CallSpec, Delta, MoaResult, RunInput
from moa_gateway.wire.chat import moa_body
from tests.support.core_fakes import QUESTION, FakeBackend

PROPOSERS = ["p1", "p2", "p3", "p4", "p5"]
QUALITY = {"p1": 3, "p2": 5, "p3": 1, "p4": 4, "p5": 2}  # what each proposer's answer is worth
_REFERENCE = re.compile(r"\n(\d+)\. ")


def config(**rank: Any) -> dict[str, Any]:
    models = {name: {"provider": "sim"} for name in [*PROPOSERS, "agg", "critic"]}
    pipeline: dict[str, Any] = {
        "layers": [{"proposers": PROPOSERS}],
        "aggregator": "agg",
        "aggregation": "rank",
    }
    if rank:
        pipeline["rank"] = rank
    return {"providers": {"sim": {"type": "simulated"}}, "models": models, "pipelines": {"moa": pipeline}}


def shown_to(spec: CallSpec) -> list[str]:
    """The references a call was shown, in order."""
    system = spec.messages[0]["content"]
    parts = _REFERENCE.split(system.rsplit("Responses from models:", 1)[1])
    return [parts[i].strip() for i in range(2, len(parts), 2)]


def by_quality(spec: CallSpec) -> str | None:
    """Proposers answer with their worth; a reviewer ranks what it is shown by that worth."""
    if spec.role == "proposer":
        return f"An answer worth {QUALITY[spec.model]}"
    if spec.role == "reviewer":
        worth = [int(text.rsplit(" ", 1)[1]) for text in shown_to(spec)]
        order = sorted(range(len(worth)), key=lambda i: -worth[i])
        return "[[" + ", ".join(str(i + 1) for i in order) + "]]"
    return None


class ReviewCounter(FakeBackend):
    """Counts reviewer calls in flight at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reviewing = self.most_reviewing = 0

    async def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        if spec.role == "reviewer":
            self.reviewing += 1
            self.most_reviewing = max(self.most_reviewing, self.reviewing)
            await asyncio.sleep(0.02)
            self.reviewing -= 1
        async for piece in super().call(spec, context, stream=stream):
            yield piece


async def run(backend: FakeBackend, params: dict[str, Any] | None = None, **rank: Any) -> MoaResult:
    catalogue = catalogue_of(parse_config(config(**rank), "test"))
    plan = make_plan(catalogue, "moa")
    events = Runner(backend, catalogue).events(
        plan, RunInput.plain(QUESTION, params), RunContext(RetryBudget(0))
    )
    return await collect(events)


def reviews_of(backend: FakeBackend) -> list[CallSpec]:
    return [spec for spec in backend.calls if spec.role == "reviewer"]


async def test_each_reviewer_ranks_the_others_anonymised_and_in_an_order_of_its_own() -> None:
    backend = ReviewCounter(reply=by_quality)

    await run(backend)

    reviews = reviews_of(backend)
    assert [spec.model for spec in reviews] == PROPOSERS
    answers = [f"An answer worth {QUALITY[p]}" for p in PROPOSERS]
    seed = request_seed(QUESTION, answers, {})
    orders = []
    for position, spec in enumerate(reviews):
        own = answers[position]
        shown = shown_to(spec)
        assert own not in shown and sorted(shown) == sorted(a for a in answers if a != own)
        assert not any(name in str(spec.messages) for name in PROPOSERS)  # no model named
        expected = shuffled([i for i in range(5) if i != position], seed, position)
        assert shown == [answers[i] for i in expected]
        orders.append([answers.index(text) for text in shown])
    # the shuffles differ between reviewers: p5 and p4 both see p1, p2 and p3, in other orders
    assert [i for i in orders[4] if i < 3] != [i for i in orders[3] if i < 3]
    assert backend.most_reviewing == 5  # every reviewer's call at once


async def test_the_same_request_is_shuffled_the_same_way_again() -> None:
    first, second = FakeBackend(reply=by_quality), FakeBackend(reply=by_quality)

    await run(first)
    await run(second)

    assert [shown_to(s) for s in reviews_of(first)] == [shown_to(s) for s in reviews_of(second)]


async def test_the_borda_count_sends_the_top_k_best_to_the_aggregator_best_first() -> None:
    backend = FakeBackend(reply=by_quality)

    result = await run(backend, top_k=2)

    ranked = result.rankings
    assert ranked is not None and (ranked.reviewers, ranked.counted, ranked.dropped) == (5, 5, [])
    assert [p.model for p in ranked.proposals] == ["p2", "p4", "p1", "p5", "p3"]
    # four rankings of four each: p2 is first in all four (4 points each), p3 last in all four (1 each)
    assert [p.points for p in ranked.proposals] == [16, 13, 10, 7, 4]
    assert [p.rank for p in ranked.proposals] == [1, 2, 3, 4, 5]
    final = backend.calls[-1]
    assert final.role == "aggregator" and shown_to(final) == ["An answer worth 5", "An answer worth 4"]
    assert result.answered_by == "agg"
    roles = [call.role for call in result.calls]
    assert roles == ["proposer"] * 5 + ["reviewer"] * 5 + ["aggregator"]
    body = moa_body(result, include_proposals=False)
    assert body["rankings"]["proposals"][0] == {"proposal": 1, "model": "p2", "points": 16, "rank": 1}
    assert (body["rankings"]["then"], body["rankings"]["top_k"]) == ("synthesize", 2)
    reviewer_calls = [c for c in body["calls"] if c["role"] == "reviewer"]
    assert len(reviewer_calls) == 5 and all(c["cost_usd"] == 0.5 for c in reviewer_calls)


async def test_a_malformed_ranking_is_dropped_and_said_so() -> None:
    def one_rambles(spec: CallSpec) -> str | None:
        if spec.role == "reviewer" and spec.model == "p3":
            return "They all have their merits."
        return by_quality(spec)

    result = await run(FakeBackend(reply=one_rambles))

    ranked = result.rankings
    assert ranked is not None and (ranked.reviewers, ranked.counted) == (5, 4)
    assert ranked.dropped == [DroppedRanking("p3", "malformed ranking: no ranking in its answer")]
    assert [p.model for p in ranked.proposals] == ["p2", "p4", "p1", "p5", "p3"]
    assert moa_body(result, include_proposals=False)["rankings"]["dropped"] == [
        {"reviewer": "p3", "reason": "malformed ranking: no ranking in its answer"}
    ]


async def test_with_no_ranking_counted_the_aggregator_reads_every_proposal() -> None:
    def all_ramble(spec: CallSpec) -> str | None:
        return "No idea." if spec.role == "reviewer" else by_quality(spec)

    backend = FakeBackend(reply=all_ramble)
    result = await run(backend, then="select")

    assert result.rankings is not None and result.rankings.counted == 0
    assert result.rankings.then == "synthesize" and result.answered_by == "agg"
    assert len(shown_to(backend.calls[-1])) == 5


async def test_then_select_returns_the_top_proposal_verbatim_without_an_aggregator() -> None:
    backend = FakeBackend(reply=by_quality)

    result = await run(backend, then="select")

    assert result.text == "An answer worth 5" and result.answered_by == "p2"
    assert "aggregator" not in [call.role for call in backend.calls]
    assert result.rankings is not None and result.rankings.then == "select"


async def test_then_select_synthesizes_where_a_proposal_may_not_answer() -> None:
    backend = FakeBackend(reply=by_quality)
    tools = [{"type": "function", "function": {"name": "look_up", "parameters": {"type": "object"}}}]

    result = await run(backend, {"tools": tools}, then="select")

    assert backend.calls[-1].role == "aggregator" and result.answered_by == "agg"
    assert result.rankings is not None and result.rankings.then == "synthesize"


async def test_configured_reviewers_rank_every_proposal_but_their_models_own() -> None:
    backend = FakeBackend(reply=by_quality)

    result = await run(backend, reviewers=["critic", "p2"])

    critic, p2 = reviews_of(backend)
    assert (critic.model, len(shown_to(critic))) == ("critic", 5)
    assert p2.model == "p2" and "An answer worth 5" not in shown_to(p2) and len(shown_to(p2)) == 4
    assert result.rankings is not None and result.rankings.counted == 2


@pytest.mark.parametrize(
    ("text", "count", "ranked"),
    [
        ("[[2, 3, 1]]", 3, [1, 2, 0]),
        ("My ranking: [[3 > 1 > 2]]", 3, [2, 0, 1]),
        ("First [[1, 2]] then, thinking again: [[2, 1]]", 2, [1, 0]),  # the last one stands
        ("<think>[[1, 2, 3]] maybe</think>[[3, 2, 1]]", 3, [2, 1, 0]),  # reasoning is not the answer
        ("2, 1, 3", 3, [1, 0, 2]),  # numbers alone
        ("[[4, 2]]", 4, [3, 1]),  # a partial ranking: the others get no points
    ],
)
def test_rankings_are_read_robustly(text: str, count: int, ranked: list[int]) -> None:
    assert read_ranking(text, count) == ranked


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Response 2 is the best.", "no ranking in its answer"),
        ("[[]]", "no ranking in its answer"),
        ("[[4, 1, 2]]", "it ranks 4, not one of the 3 responses shown"),
        ("[[1, 1, 2]]", "it ranks 1 twice"),
        ("[[0, 1, 2]]", "it ranks 0, not one of the 3 responses shown"),
    ],
)
def test_a_malformed_ranking_says_why(text: str, why: str) -> None:
    with pytest.raises(MalformedRanking, match=re.escape(why)):
        read_ranking(text, 3)


def test_borda_gives_m_points_to_the_first_of_m_and_none_to_the_unranked() -> None:
    authors = ["a", "b", "c", "d"]
    ballots = [
        (Review("a", [1, 2, 3]), [2, 0, 1]),  # d, b, c: 3, 2, 1 points
        (Review("b", [3, 0, 2]), [1]),  # a alone: 3 points; d and c unranked
    ]

    assert borda(authors, ballots) == [
        RankedProposal(0, "a", 3, 1),  # a tie with d: the earlier proposal first
        RankedProposal(3, "d", 3, 2),
        RankedProposal(1, "b", 2, 3),
        RankedProposal(2, "c", 1, 4),
    ]


def test_the_config_checks_rank_settings() -> None:
    parse_config(config(reviewers=["critic"], top_k=3, then="select"), "test")
    refused: list[tuple[dict[str, Any], str]] = [
        ({"reviewers": ["nobody"]}, "rank.reviewers: unknown model 'nobody'"),
        ({"then": "vote"}, "then"),
        ({"top_k": 0}, "top_k"),
    ]
    for bad, message in refused:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config(config(**bad), "test")
    data = config()
    data["pipelines"]["moa"]["aggregation"] = "synthesize"
    data["pipelines"]["moa"]["rank"] = {"top_k": 2}
    with pytest.raises(ConfigError, match="only with aggregation: rank"):
        parse_config(data, "test")
    data = config()
    data["pipelines"]["moa"]["layers"] = [{"proposers": ["p1", "p2"]}]
    with pytest.raises(ConfigError, match="needs 3 proposers in the last layer"):
        parse_config(data, "test")
