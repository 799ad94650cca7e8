"""`rank` (peer review): reviewers rank the other proposals, anonymised and shuffled; the rankings are
added up by Borda count (app/moa_gateway/core/ranking.py); the aggregator synthesizes from the `top_k`
best, or (`then: select`, where a proposal may answer) the best one is the answer as it is.

Reviewer calls run concurrently, after the last layer and before the final call, with the role
`reviewer`. A ranking that cannot be read, or a reviewer that failed, is dropped and said so in
`moa.rankings`; with no ranking counted, the aggregator reads every proposal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace

from moa_gateway.core.chain import Slot, Step
from moa_gateway.core.events import Event
from moa_gateway.core.final.base import FinalOutcome, Finishing, Proposals
from moa_gateway.core.final.synthesize import synthesize
from moa_gateway.core.fitting import with_references
from moa_gateway.core.policies import proposal_may_answer
from moa_gateway.core.ranking import (
    RANK_PROMPT,
    MalformedRanking,
    Review,
    borda,
    plan_reviews,
    read_ranking,
    request_seed,
)
from moa_gateway.core.reports import DroppedRanking, RankingReport


async def rank(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    run, setting = finishing.run, finishing.plan.policy.rank
    authors = [model for model, _ in proposals]
    seed = request_seed(run.proposer_messages, [a.text for _, a in proposals], run.proposer_params)
    reviews = plan_reviews(authors, setting.reviewers, seed)
    if not reviews:  # fewer than two proposals for any reviewer: nothing to rank
        async for event in synthesize(finishing, proposals, outcome):
            yield event
        return
    slots = [Slot(review.reviewer) for review in reviews]
    async for event in _reviewed(finishing, proposals, reviews, slots):
        yield event
    outcome.slots += slots
    ballots, dropped = [], []
    for review, slot in zip(reviews, slots, strict=True):
        if slot.answer is None:
            dropped.append(DroppedRanking(review.reviewer, "its call failed"))
            continue
        try:
            ballots.append((review, read_ranking(slot.answer.text, len(review.shown))))
        except MalformedRanking as exc:
            dropped.append(DroppedRanking(review.reviewer, f"malformed ranking: {exc}"))
    ranked = borda(authors, ballots)
    select = setting.then == "select" and bool(ballots) and proposal_may_answer(run)
    top = len(proposals) if not ballots else min(setting.top_k, len(proposals))
    outcome.rankings = RankingReport(
        ranked,
        len(reviews),
        len(ballots),
        dropped,
        "select" if select else "synthesize",
        0 if select else top,
    )
    if select:
        for event in finishing.choose(proposals, ranked[0].proposal, outcome):
            yield event
        return
    best = [proposals[entry.proposal] for entry in ranked[:top]] if ballots else proposals
    async for event in synthesize(finishing, best, outcome):
        yield event


async def _reviewed(
    finishing: Finishing, proposals: Proposals, reviews: list[Review], slots: list[Slot]
) -> AsyncGenerator[Event, None]:
    """Every reviewer's call, at once, their events as they happen; each slot keeps its reviewer's
    calls and answer. The pipeline deadline bounds them all."""
    run, plan = finishing.run, finishing.plan
    how = plan.policy.injection(final=False)
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    base = Step(plan.final_layer, "reviewer")

    async def review(position: int, task: Review) -> None:
        shown = [proposals[i] for i in task.shown]
        reader = finishing.catalogue.models[task.reviewer]
        messages = with_references(
            [reader], run.proposer_messages, shown, RANK_PROMPT, run.proposer_params, how
        )
        chain = finishing.catalogue.fallback_chain(task.reviewer)
        walk = finishing.walker.walk(
            chain, messages, run.proposer_params, slots[position], replace(base, slot=position)
        )
        async for event in walk:
            queue.put_nowait(event)

    async def work() -> None:
        try:
            async with asyncio.timeout_at(finishing.deadline), asyncio.TaskGroup() as group:
                for position, task in enumerate(reviews):
                    group.create_task(review(position, task))
        finally:
            queue.put_nowait(None)

    worker = asyncio.create_task(work())
    try:
        while (event := await queue.get()) is not None:
            yield event
        await worker  # its TimeoutError, at the pipeline deadline, is the run's
    finally:
        if not worker.done():
            worker.cancel()
            await asyncio.wait([worker])
