"""The one fallback walker: try a chain of models in order, skipping open circuits, until one answers.

Used for every proposer slot and for the final call, streamed or not. Each call's start, deltas and
end come out as events, and every call made is recorded in the slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from app.core.events import CallDelta, CallFinished, CallStarted, Event, FinalDelta
from app.core.failures import Failure, FailureKind
from app.core.plan import Catalogue
from app.core.ports import ChatBackend, RunContext
from app.core.types import Answer, CallRecord, CallSpec, CallStatus, Message, Role


@dataclass
class Slot:
    """One proposer position (or the final call): its model, the calls made for it, and its answer."""

    primary: str
    records: list[CallRecord] = field(default_factory=list)
    answer: Answer | None = None
    answered_by: str = ""
    last_failure: Failure | None = None


@dataclass(frozen=True)
class Step:
    """Where a chain stands in the run: its layer number and role, and how its deltas travel."""

    layer: int
    role: Role
    final: bool = False  # the final call: its deltas are the answer, and its last model is always tried
    stream: bool = False  # ask the upstream for a stream (deltas come out as events)
    deadline: float | None = None  # loop time by which each wait for the upstream must end


class ChainWalker:
    def __init__(
        self, backend: ChatBackend, catalogue: Catalogue, context: RunContext, started: float
    ) -> None:
        self._backend = backend
        self._catalogue = catalogue
        self._context = context
        self._started = started

    async def walk(
        self, chain: list[str], messages: list[Message], params: dict[str, Any], slot: Slot, step: Step
    ) -> AsyncGenerator[Event, None]:
        for index, alias in enumerate(chain):
            last_resort = step.final and index == len(chain) - 1
            # Told before admission: between admitting (which may take a half-open breaker's one trial)
            # and the call that gives the trial back, nothing may wait on the consumer.
            yield CallStarted(step.layer, step.role, alias, self.since_start())
            # An open circuit skips a model; the final call's last option is made even so, as no answer
            # at all is worse than a call to a model that may have recovered.
            if not self._backend.admit(alias) and not last_resort:
                record = CallRecord(
                    step.layer,
                    step.role,
                    alias,
                    "skipped",
                    0.0,
                    error=f"model {alias}: skipped while its circuit breaker is open",
                    failure=FailureKind.CIRCUIT_OPEN,
                )
                slot.records.append(record)
                yield CallFinished(record, self.since_start())
                continue
            spec = CallSpec(step.layer, step.role, alias, messages, self._params(alias, params, step))
            started = time.perf_counter()
            answer: Answer | None = None
            sent = False
            try:
                async with contextlib.aclosing(
                    self._backend.call(spec, self._context, stream=step.stream)
                ) as it:
                    while True:
                        if step.deadline is None:
                            piece = await anext(it, None)
                        else:  # the deadline covers each wait for the upstream, not our consumer's
                            async with asyncio.timeout_at(step.deadline):
                                piece = await anext(it, None)
                        if piece is None:
                            break
                        if isinstance(piece, Answer):
                            answer = piece
                        elif step.final:
                            sent = True
                            yield FinalDelta(piece)
                        else:
                            yield CallDelta(step.layer, step.role, alias, piece)
                if answer is None:
                    raise Failure(
                        FailureKind.BAD_RESPONSE,
                        f"model {alias}: the call ended without an answer",
                        model=alias,
                    )
            except Failure as exc:
                record = _record(step, alias, "error", started, error=exc.message, failure=exc.kind)
                slot.records.append(record)
                slot.last_failure = exc
                yield CallFinished(record, self.since_start())
                if sent:  # the client has part of this model's answer: no switching now
                    raise
                continue
            except asyncio.CancelledError:
                cancelled = f"model {alias}: cancelled"
                slot.records.append(
                    _record(step, alias, "cancelled", started, error=cancelled, failure=FailureKind.CANCELLED)
                )
                raise
            record = _record(
                step,
                alias,
                "ok",
                started,
                usage=answer.usage,
                cost_usd=answer.cost_usd,
                ttft_s=answer.ttft_s,
                text=answer.text,
                fallback_for=chain[0] if index else None,
            )
            slot.records.append(record)
            slot.answer, slot.answered_by = answer, alias
            yield CallFinished(record, self.since_start())
            return

    def _params(self, alias: str, request: dict[str, Any], step: Step) -> dict[str, Any]:
        """Merge the model's configured params with the request's.

        A proposer keeps what its model config pins; the aggregator and direct calls take the client's.
        """
        model = self._catalogue.models[alias].params
        return {**model, **request} if step.final else {**request, **model}

    def since_start(self) -> float:
        return time.perf_counter() - self._started


def _record(step: Step, alias: str, status: CallStatus, started: float, **details: Any) -> CallRecord:
    """What a call made at `started` (perf_counter) did."""
    return CallRecord(step.layer, step.role, alias, status, time.perf_counter() - started, **details)
