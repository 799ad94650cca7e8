"""The proposer phase: the layers in order (layer k sees layer k-1's answers), each fanned out, checked
for quorum, and followed by the early-exit policy. What it came to is left in a `Panel`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from moa_gateway.core.chain import ChainWalker, Slot
from moa_gateway.core.events import AgreementMeasured, Event, LayerFinished, LayerStarted
from moa_gateway.core.fitting import with_references
from moa_gateway.core.layer import quorum_failure, run_layer
from moa_gateway.core.plan import Catalogue, LayerPlan, Plan
from moa_gateway.core.policies import ESCALATED, agreement_of, early_exit_after, proposal_may_answer
from moa_gateway.core.reports import AgreementReport, EarlyExitReport
from moa_gateway.core.types import Answer, CallRecord, RunInput


@dataclass
class Panel:
    """What the proposers came to: the last layer's answers, every call record, who gave no answer, and
    the early exit if one applied (with the agreed proposal's index when it is the answer)."""

    layers: list[LayerPlan]
    proposals: list[tuple[str, Answer]] = field(default_factory=list)
    records: list[CallRecord] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    waited_s: float = 0.0
    early_exit: EarlyExitReport | None = None
    agreed_index: int | None = None  # the proposal that is the answer (the aggregator skipped)
    reused: bool = False  # the proposals are the user turn's, kept from an earlier call (no call made)
    layer: int = 0  # the layer whose answers `proposals` are
    agreement: AgreementReport | None = None  # how far they agree (two or more of them)


@dataclass(slots=True)  # per run: not frozen, a frozen init costs ~4x
class Proposing:
    """How the layers run: the walker and catalogue, where their events go, and the pipeline deadline."""

    walker: ChainWalker
    catalogue: Catalogue
    live_deltas: bool  # proposers' deltas as they arrive (a layer in a task of its own) or at its end
    deadline: float | None
    output_cap: int | None


async def propose(
    setup: Proposing, plan: Plan, run: RunInput, panel: Panel, *, measure: bool = True
) -> AsyncGenerator[Event, None]:
    """Run `panel.layers` in order, yielding their events; raises quorum Failures and TimeoutError.
    Then, with `measure`, how far the proposals agree (`panel.agreement`, and its event)."""
    policy = plan.policy
    for number, layer in enumerate(panel.layers, 1):
        yield LayerStarted(number, list(layer.proposers))
        readers = [setup.catalogue.models[alias] for alias in layer.proposers]
        messages = with_references(
            readers,
            run.proposer_messages,
            panel.proposals,
            plan.prompt,
            run.proposer_params,
            policy.injection(final=False),
        )
        started = time.perf_counter()
        slots: list[Slot] = []
        if setup.live_deltas:
            events = _live_layer(setup, number, layer, messages, run, slots)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
        else:  # the layer runs in this task, its events follow at its end (even at the deadline)
            buffered: list[Event] = []
            late = await _buffered_layer(setup, number, layer, messages, run, slots, buffered)
            for event in buffered:
                yield event
            if late is not None:
                raise late
        panel.waited_s += time.perf_counter() - started
        for slot in slots:
            panel.records.extend(slot.records)
        panel.proposals = [(s.answered_by, s.answer) for s in slots if s.answer is not None]
        panel.layer = number
        missing = [s.primary for s in slots if s.answer is None]
        panel.dropped += missing
        yield LayerFinished(number, [model for model, _ in panel.proposals], missing)
        if len(panel.proposals) < layer.min_proposers:
            raise quorum_failure(number, layer, slots)
        if policy.early_exit is not None:
            decision = early_exit_after(
                policy.early_exit, panel.proposals, number, len(panel.layers), proposal_may_answer(run)
            )
            if decision is not None:
                panel.early_exit, panel.agreed_index = decision.report, decision.answer_index
                break
    else:  # every layer ran: no early exit
        if policy.early_exit is not None and policy.early_exit.escalate_to and panel.layers:
            panel.early_exit = ESCALATED
    if measure:
        for event in measured(plan, panel):
            yield event


def measured(plan: Plan, panel: Panel) -> list[Event]:
    """How far the proposals the final phase reads agree: set in `panel.agreement`, and its event
    (none with fewer than two proposals)."""
    panel.agreement = agreement_of(plan.policy, panel.proposals, panel.layer)
    return [] if panel.agreement is None else [AgreementMeasured(panel.agreement)]


async def _buffered_layer(
    setup: Proposing,
    number: int,
    layer: LayerPlan,
    messages: list[dict[str, object]],
    run: RunInput,
    slots: list[Slot],
    events: list[Event],
) -> TimeoutError | None:
    """The layer run in this task: its slots left in `slots`, its events in `events`; the pipeline
    deadline's TimeoutError returned, to be raised once what the layer did before it has gone out. A
    coroutine, not a generator: its events pass one generator fewer on their way out."""
    try:
        slots += await _layer_slots(setup, number, layer, messages, run, events.append, stream=False)
    except TimeoutError as late:
        return late
    return None


async def _layer_slots(
    setup: Proposing,
    number: int,
    layer: LayerPlan,
    messages: list[dict[str, object]],
    run: RunInput,
    emit: Callable[[Event], None],
    *,
    stream: bool,
) -> list[Slot]:
    """The layer's slots, within the pipeline deadline, its events handed to `emit` as they happen."""
    async with asyncio.timeout_at(setup.deadline):
        return await run_layer(
            setup.walker,
            setup.catalogue,
            number,
            layer,
            messages,
            run.proposer_params,
            emit,
            stream=stream,
            output_cap=setup.output_cap,
        )


async def _live_layer(
    setup: Proposing,
    number: int,
    layer: LayerPlan,
    messages: list[dict[str, object]],
    run: RunInput,
    slots: list[Slot],
) -> AsyncGenerator[Event, None]:
    """The layer's events as they happen (proposers' deltas live): the layer runs in a task of its own
    feeding a queue; its slots are left in `slots`."""
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    async def work() -> list[Slot]:
        try:
            return await _layer_slots(setup, number, layer, messages, run, queue.put_nowait, stream=True)
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(work())
    try:
        while (item := await queue.get()) is not None:
            yield item
        slots += await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait([task])  # unlike suppressing CancelledError, a cancel of ours propagates
