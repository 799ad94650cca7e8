"""`select`: the aggregator names the best proposal, which is returned verbatim. When no proposal may
answer (tools, a schema, n > 1) or the aggregator names none, it synthesizes instead."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event
from moa_gateway.core.final.base import FinalOutcome, Finishing, Proposals
from moa_gateway.core.final.synthesize import synthesize
from moa_gateway.core.fitting import with_references
from moa_gateway.core.policies import proposal_may_answer

SELECT_PROMPT = (
    "You have been provided with a set of responses from various models to the latest user query. Your "
    "task is to choose the single best one: the most accurate, complete and helpful response to the "
    "instruction. Do not write a new response. Reply with only the number of the best response in double "
    "brackets, for example [[2]]."
    "\n\nResponses from models:"
)
_CHOICE = re.compile(r"\[\[\s*(\d+)\s*\]\]")


async def select(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    run = finishing.run
    if len(proposals) > 1 and proposal_may_answer(run):
        messages = with_references(
            finishing.readers,
            run.proposer_messages,
            proposals,
            SELECT_PROMPT,
            run.proposer_params,
            finishing.plan.policy.injection(final=True),
        )
        async for event in finishing.call(messages, run.proposer_params, outcome, advisory=True):
            yield event
        pick = outcome.final
        index = None if pick is None or pick.answer is None else selected(pick.answer.text, len(proposals))
        if index is not None:
            for event in finishing.choose(proposals, index, outcome):
                yield event
            return
    async for event in synthesize(finishing, proposals, outcome):  # no usable choice
        yield event


def selected(text: str, count: int) -> int | None:
    """The 0-based index the aggregator chose among `count` proposals, or None if it named none."""
    match = _CHOICE.search(text)
    if match is None:
        bare = text.strip().rstrip(".")
        if not bare.isdigit():
            return None
        number = int(bare)
    else:
        number = int(match.group(1))
    return number - 1 if 1 <= number <= count else None
