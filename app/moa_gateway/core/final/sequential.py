"""`sequential` (Self-MoA-Seq): references aggregated a window at a time, the running synthesis carried
into the next round, the last round synthesized as usual."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event
from moa_gateway.core.final.base import FinalOutcome, Finishing, Proposals
from moa_gateway.core.final.synthesize import synthesize
from moa_gateway.core.fitting import with_references


async def sequential(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    run, plan = finishing.run, finishing.plan
    window = plan.policy.window
    if len(proposals) > window:
        spans = rounds(len(proposals), window)
        carry: Proposals = []
        for first, last in spans[:-1]:
            references = carry + proposals[first:last]
            messages = with_references(
                finishing.readers,
                run.proposer_messages,
                references,
                plan.prompt,
                run.proposer_params,
                plan.policy.injection(final=True),
            )
            async for event in finishing.call(messages, run.proposer_params, outcome, advisory=True):
                yield event
            part = outcome.final
            if part is not None and part.answer is not None:
                carry = [(part.answered_by, part.answer)]
        first, last = spans[-1]
        proposals = carry + proposals[first:last]
    async for event in synthesize(finishing, proposals, outcome):
        yield event


def rounds(count: int, window: int) -> list[tuple[int, int]]:
    """The (start, end) of the references each sequential round takes: `window` in the first, then
    `window - 1` beside the running synthesis, until all are taken."""
    window = max(2, window)
    spans, start = [(0, min(window, count))], min(window, count)
    while start < count:
        end = min(start + window - 1, count)
        spans.append((start, end))
        start = end
    return spans
