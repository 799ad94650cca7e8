"""One proposer layer: its slots fanned out concurrently, cut off at the layer's deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from moa_gateway.core.chain import ChainWalker, Slot, Step
from moa_gateway.core.events import Event
from moa_gateway.core.failures import Failure, FailureKind, combined_kind
from moa_gateway.core.plan import Catalogue, LayerPlan
from moa_gateway.core.types import Message, Role


async def run_layer(
    walker: ChainWalker,
    catalogue: Catalogue,
    number: int,
    layer: LayerPlan,
    messages: list[Message],
    params: dict[str, Any],
    emit: Callable[[Event], None],
    *,
    stream: bool = False,
    output_cap: int | None = None,
    role: Role = "proposer",
    acting: bool = False,
) -> list[Slot]:
    """Every slot of the layer, each with its answer or its failed calls. Events go to `emit`. A model
    listed more than once (Self-MoA) gets a sample number per slot, so its samples differ. A gate's
    samples are a layer too (`role` gate, `acting`: the client's params win)."""
    slots = [Slot(alias) for alias in layer.proposers]
    repeated = {alias for alias in layer.proposers if layer.proposers.count(alias) > 1}
    samples = [
        layer.proposers[:i].count(alias) if alias in repeated else None
        for i, alias in enumerate(layer.proposers)
    ]

    async def fill(slot: Slot, position: int) -> None:
        chain = catalogue.fallback_chain(slot.primary)
        # Made whole, not replace()d from a layer-wide Step: replace() costs twice a construction.
        step = Step(
            number,
            role,
            stream=stream,
            slot=position,
            sample=samples[position],
            output_cap=output_cap,
            acting=acting,
        )
        async for event in walker.walk(chain, messages, params, slot, step):
            emit(event)

    # A TaskGroup ties every call to this request: if the request is cancelled, so are they.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(fill(slot, position)) for position, slot in enumerate(slots)]
        if layer.deadline_s is not None:
            await asyncio.wait(tasks, timeout=layer.deadline_s)
            for task in tasks:
                task.cancel()  # a no-op for those that finished
    if layer.deadline_s is not None:
        for position, (slot, task) in enumerate(zip(slots, tasks, strict=True)):
            if task.cancelled() and slot.records:
                slot.records[-1] = replace(
                    slot.records[-1],
                    error=f"model {slot.records[-1].model}: no answer within the layer deadline ({layer.deadline_s:g}s)",
                    failure=FailureKind.LAYER_DEADLINE,
                )
                emit(walker.finished(slot.records[-1], position))
    return slots


def quorum_failure(number: int, layer: LayerPlan, slots: list[Slot]) -> Failure:
    """Too few proposers of a layer answered: one failure naming each failed model and why."""
    failed = [s.records[-1] for s in slots if s.answer is None and s.records]
    answered = len(slots) - len(failed)
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in failed)
    message = f"layer {number}: {answered} of {len(slots)} proposers answered, {layer.min_proposers} needed ({reasons})"
    kinds = {r.failure for r in failed if r.failure is not None}
    return Failure(combined_kind(kinds), message, model=failed[0].model if failed else "")
