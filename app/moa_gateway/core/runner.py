"""The MoA run, composed of its phases: preflight, the proposer layers, then a finalizer chosen by the
pipeline's aggregation, as one async stream of events.

`events()` is the only producer; a streamed response consumes it as it comes, and the JSON answer is
`collect(events(...))`, so both modes are the same code. A pipeline deadline bounds every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from moa_gateway.core.chain import ChainWalker
from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished, RunStarted
from moa_gateway.core.failures import Failure
from moa_gateway.core.fanout import proposed, user_turn
from moa_gateway.core.final import FinalOutcome, Finishing, finalizer_for
from moa_gateway.core.gate import GateOutcome, ask_gate
from moa_gateway.core.panel_store import MemoryPanelStore, PanelStore
from moa_gateway.core.plan import Catalogue, Plan
from moa_gateway.core.ports import ChatBackend, RunContext
from moa_gateway.core.preflight import preflight
from moa_gateway.core.proposing import Panel, Proposing
from moa_gateway.core.reports import Degraded
from moa_gateway.core.result import assemble, deadline_failure
from moa_gateway.core.types import Delta, MoaResult, RunInput


@dataclass(frozen=True)
class RunOptions:
    stream: bool = False  # stream the final answer (FinalDelta events)
    proposer_deltas: bool = False  # stream proposers too (CallDelta events, as they arrive)


class Runner:
    def __init__(self, backend: ChatBackend, catalogue: Catalogue, panels: PanelStore | None = None) -> None:
        self._backend = backend
        self._catalogue = catalogue
        self._panels = MemoryPanelStore() if panels is None else panels  # `fanout: user_turn`'s

    async def events(
        self, plan: Plan, run: RunInput, context: RunContext, options: RunOptions = RunOptions()
    ) -> AsyncGenerator[Event, None]:
        started = time.perf_counter()
        try:  # checked before any call: the conversation fits the acting models, the plan fits the budget
            checked = preflight(self._catalogue, plan, run)
        except Failure as failure:
            yield RunFailed(failure)
            return
        walker = ChainWalker(self._backend, self._catalogue, context, started)
        deadline = None if plan.deadline_s is None else asyncio.get_running_loop().time() + plan.deadline_s
        yield RunStarted(plan.model_id, plan.pipeline, len(checked.layers))
        gate, outcome = GateOutcome(), FinalOutcome()
        try:
            if plan.policy.gate is not None:  # one model first: its answer stands if it is confident
                phase = ask_gate(walker, self._catalogue, plan.policy.gate, run, deadline, gate)
                async with contextlib.aclosing(phase):  # closed when the consumer stops early
                    async for event in phase:
                        yield event
                if gate.passed:
                    for event in gate.answer_events(options.stream):
                        yield event
                    yield RunFinished(gate.result(plan))
                    return
            panel = Panel(checked.layers, records=list(gate.records), waited_s=gate.waited_s)
            proposing = Proposing(
                walker, self._catalogue, options.proposer_deltas, deadline, checked.proposer_cap
            )
            turn = user_turn(plan, run, context.caller, checked, self._catalogue)
            phase = proposed(proposing, plan, run, panel, turn, self._panels)
            async with contextlib.aclosing(phase):  # closed when the consumer stops early
                async for event in phase:
                    yield event
            final_started = time.perf_counter()
            finishing = Finishing(
                walker, self._catalogue, plan, run, self._chain(plan, panel), options.stream, deadline
            )
            if panel.agreed_index is not None:  # the proposers agreed: their answer stands
                for event in finishing.choose(panel.proposals, panel.agreed_index, outcome):
                    yield event
            else:
                finalize = finalizer_for(plan.policy.aggregation, checked=run.check_answer is not None)
                phase = finalize(finishing, panel.proposals, outcome)
                async with contextlib.aclosing(phase):
                    async for event in phase:
                        yield event
            waited_s = panel.waited_s + time.perf_counter() - final_started
            result = assemble(plan, panel, outcome, waited_s, checked.budget, gate.report)
        except TimeoutError:
            for event in self._late(walker, plan):
                yield event
            return
        except Failure as failure:
            yield RunFailed(failure)
            return
        if result.degraded is Degraded.AGGREGATOR_FAILED and options.stream:
            yield FinalDelta(Delta(text=result.text))  # nothing was streamed yet: the stand-in goes out whole
        yield RunFinished(result)

    @staticmethod
    def _late(walker: ChainWalker, plan: Plan) -> list[Event]:
        """The ends of the calls the pipeline deadline cut short (every CallStarted gets its
        CallFinished), then the run's failure."""
        late = deadline_failure(plan)
        why = f"no answer within the pipeline deadline ({plan.deadline_s:g}s)"
        return [*walker.abandoned(late.kind, why), RunFailed(late)]

    def _chain(self, plan: Plan, panel: Panel) -> list[str]:
        """Who answers: the aggregator chain, or the escalation model's when the proposers disagreed."""
        early = plan.policy.early_exit
        if (
            early is not None
            and early.escalate_to
            and panel.early_exit is not None
            and panel.early_exit.escalated
        ):
            return self._catalogue.fallback_chain(early.escalate_to)
        return plan.final_chain


async def collect(events: AsyncGenerator[Event, None]) -> MoaResult:
    """The run's result (the JSON answer), or its Failure raised."""
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, RunFinished):
                return event.result
            if isinstance(event, RunFailed):
                raise event.failure
    raise RuntimeError("the run ended without a result")
