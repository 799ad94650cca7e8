"""`synthesize` (the default, the paper's): the aggregator writes one answer from the references."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from moa_gateway.core.events import Event
from moa_gateway.core.final.base import FinalOutcome, Finishing, Proposals
from moa_gateway.core.fitting import with_references


def synthesize(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    """The final call's events as they come: its generator itself, not one re-yielding it (every event
    of the answer, each streamed token, would pass one more generator)."""
    run, plan = finishing.run, finishing.plan
    how = plan.policy.injection(final=True)
    messages = with_references(finishing.readers, run.messages, proposals, plan.prompt, run.params, how)
    return finishing.call(messages, run.params, outcome)
