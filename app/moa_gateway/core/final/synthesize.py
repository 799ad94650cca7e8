"""`synthesize` (the default, the paper's): the aggregator writes one answer from the references."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event
from moa_gateway.core.final.base import FinalOutcome, Finishing, Proposals
from moa_gateway.core.fitting import with_references


async def synthesize(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    run, plan = finishing.run, finishing.plan
    how = plan.policy.injection(final=True)
    messages = with_references(finishing.readers, run.messages, proposals, plan.prompt, run.params, how)
    async for event in finishing.call(messages, run.params, outcome):
        yield event
