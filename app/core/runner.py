"""The MoA run: proposer layers, then the final call, as one async stream of events.

`events()` is the only producer; a streamed response consumes it as it comes, and the JSON answer is
`collect(events(...))`, so both modes are the same code. A pipeline deadline bounds every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from app.core.chain import ChainWalker, Slot, Step
from app.core.events import (
    Event,
    FinalDelta,
    LayerFinished,
    LayerStarted,
    RunFailed,
    RunFinished,
    RunStarted,
)
from app.core.failures import Failure, FailureKind, combined_kind
from app.core.layer import quorum_failure, run_layer
from app.core.plan import Catalogue, LayerPlan, Plan
from app.core.ports import ChatBackend, RunContext
from app.core.prompts import inject_references
from app.core.types import Answer, CallRecord, Delta, Message, MoaResult


@dataclass(frozen=True)
class RunOptions:
    stream: bool = False  # stream the final answer (FinalDelta events)
    proposer_deltas: bool = False  # stream proposers too (CallDelta events, as they arrive)


class Runner:
    def __init__(self, backend: ChatBackend, catalogue: Catalogue) -> None:
        self._backend = backend
        self._catalogue = catalogue

    async def events(
        self,
        plan: Plan,
        messages: list[Message],
        params: dict[str, Any],
        context: RunContext,
        options: RunOptions = RunOptions(),
    ) -> AsyncGenerator[Event, None]:
        started = time.perf_counter()
        walker = ChainWalker(self._backend, self._catalogue, context, started)
        deadline = None if plan.deadline_s is None else asyncio.get_running_loop().time() + plan.deadline_s
        yield RunStarted(plan.model_id, plan.pipeline, len(plan.layers))
        records: list[CallRecord] = []
        proposals: list[tuple[str, Answer]] = []
        dropped: list[str] = []
        waited_s = 0.0
        try:
            for number, layer in enumerate(plan.layers, 1):
                yield LayerStarted(number, list(layer.proposers))
                layer_messages = self._with_references(plan, messages, proposals)
                layer_started = time.perf_counter()
                slots: list[Slot] = []
                layer_events = self._layer(
                    walker, number, layer, layer_messages, params, deadline, options, slots
                )
                async with contextlib.aclosing(layer_events):
                    async for event in layer_events:
                        yield event
                waited_s += time.perf_counter() - layer_started
                for slot in slots:
                    records.extend(slot.records)
                proposals = [(s.answered_by, s.answer) for s in slots if s.answer is not None]
                missing = [s.primary for s in slots if s.answer is None]
                dropped += missing
                yield LayerFinished(number, [model for model, _ in proposals], missing)
                if len(proposals) < layer.min_proposers:
                    raise quorum_failure(number, layer, slots)
            final = Slot(plan.final_chain[0])
            step = Step(
                plan.final_layer, plan.final_role, final=True, stream=options.stream, deadline=deadline
            )
            final_started = time.perf_counter()
            final_messages = self._with_references(plan, messages, proposals)
            final_events = walker.walk(plan.final_chain, final_messages, params, final, step)
            async with contextlib.aclosing(final_events):
                async for event in final_events:
                    yield event
            waited_s += time.perf_counter() - final_started
            records.extend(final.records)
            result = _result(plan, proposals, final, records, waited_s, dropped)
        except TimeoutError:
            yield RunFailed(_deadline_failure(plan))
            return
        except Failure as failure:
            yield RunFailed(failure)
            return
        if result.degraded and options.stream:  # nothing was streamed yet: the stand-in answer goes out whole
            yield FinalDelta(Delta(text=result.text))
        yield RunFinished(result)

    async def _layer(
        self,
        walker: ChainWalker,
        number: int,
        layer: LayerPlan,
        messages: list[Message],
        params: dict[str, Any],
        deadline: float | None,
        options: RunOptions,
        slots: list[Slot],
    ) -> AsyncGenerator[Event, None]:
        """The layer's events; its slots are left in `slots`. Without live deltas, the layer runs in this
        task and its events follow at its end; with them, it runs in a task of its own feeding a queue."""
        if not options.proposer_deltas:
            buffered: list[Event] = []
            async with asyncio.timeout_at(deadline):
                slots += await run_layer(
                    walker, self._catalogue, number, layer, messages, params, buffered.append
                )
            for event in buffered:
                yield event
            return
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        async def work() -> list[Slot]:
            try:
                async with asyncio.timeout_at(deadline):
                    return await run_layer(
                        walker,
                        self._catalogue,
                        number,
                        layer,
                        messages,
                        params,
                        queue.put_nowait,
                        stream=True,
                    )
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
                await asyncio.wait(
                    [task]
                )  # unlike suppressing CancelledError, a cancel of ours still propagates

    def _with_references(
        self, plan: Plan, messages: list[Message], proposals: list[tuple[str, Answer]]
    ) -> list[Message]:
        references = [answer.text for _, answer in proposals]
        return inject_references(messages, references, plan.prompt) if references else messages


async def collect(events: AsyncGenerator[Event, None]) -> MoaResult:
    """The run's result (the JSON answer), or its Failure raised."""
    async with contextlib.aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, RunFinished):
                return event.result
            if isinstance(event, RunFailed):
                raise event.failure
    raise RuntimeError("the run ended without a result")


def _result(
    plan: Plan,
    proposals: list[tuple[str, Answer]],
    final: Slot,
    records: list[CallRecord],
    waited_s: float,
    dropped: list[str],
) -> MoaResult:
    """The final call's answer; if it gave none, the first proposal if the pipeline allows, else the error."""
    degraded = None
    if final.answer is not None:
        answer, model = final.answer, final.answered_by
    elif plan.best_proposal_fallback and proposals:
        (model, answer), degraded = proposals[0], "aggregator_failed"
    else:
        raise _chain_failure(plan, final)
    return MoaResult(plan.pipeline, answer, records, waited_s, dropped, model, degraded)


def _chain_failure(plan: Plan, final: Slot) -> Failure:
    """The aggregator (or direct model) and every fallback failed."""
    if len(final.records) == 1 and final.last_failure is not None:
        return final.last_failure  # one model, one error: keep it as it was
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in final.records)
    what = "aggregator" if plan.pipeline else "model"
    message = f"{plan.model_id}: the {what} and its fallbacks all failed ({reasons})"
    kinds = {r.failure for r in final.records if r.failure is not None}
    return Failure(combined_kind(kinds), message, model=plan.final_chain[0])


def _deadline_failure(plan: Plan) -> Failure:
    return Failure(
        FailureKind.PIPELINE_DEADLINE,
        f"{plan.model_id}: no answer within the pipeline deadline ({plan.deadline_s:g}s)",
        model=plan.final_chain[0],
    )
