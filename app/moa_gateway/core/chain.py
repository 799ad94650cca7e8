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

from moa_gateway.core.advice import text_only
from moa_gateway.core.events import CallDelta, CallFinished, CallStarted, Event, FinalDelta
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.fitting import overflow
from moa_gateway.core.plan import Catalogue
from moa_gateway.core.ports import ChatBackend, RunContext
from moa_gateway.core.types import Answer, CallRecord, CallSpec, CallStatus, Message, Role


@dataclass
class Slot:
    """One proposer position (or the final call): its model, the calls made for it, and its answer."""

    primary: str
    records: list[CallRecord] = field(default_factory=list)
    answer: Answer | None = None
    answered_by: str = ""
    last_failure: Failure | None = None


@dataclass(slots=True)  # per upstream call: not frozen, a frozen init costs ~4x
class Step:
    """Where a chain stands in the run: its layer number and role, and how its deltas travel."""

    layer: int
    role: Role
    final: bool = False  # the final call: its deltas are the answer, and its last model is always tried
    stream: bool = False  # ask the upstream for a stream (deltas come out as events)
    deadline: float | None = None  # loop time by which each wait for the upstream must end
    slot: int = 0  # the proposer's position in its layer (0 for the final call)
    sample: int | None = None  # which sample of a model repeated in its layer (Self-MoA): its own seed
    output_cap: int | None = None  # max_tokens for this call whatever else is asked (budget, reference cap)
    acting: bool = False  # answers for the client (a gate's sample): the client's params win, as for `final`


SAMPLE_TEMPERATURE = 0.7  # for repeated samples of a model the client or config left at 0 or unset


class ChainWalker:
    def __init__(
        self, backend: ChatBackend, catalogue: Catalogue, context: RunContext, started: float
    ) -> None:
        self._backend = backend
        self._catalogue = catalogue
        self._context = context
        self._started = started
        self._open: dict[tuple[int, int], CallStarted] = {}  # calls started and not yet finished

    async def walk(
        self, chain: list[str], messages: list[Message], params: dict[str, Any], slot: Slot, step: Step
    ) -> AsyncGenerator[Event, None]:
        """Each model of `chain` in turn until one answers; `slot` keeps every record and the answer.
        A call's deltas come out as events, then its record; a failure after part of a final answer
        went out is raised: no switching models mid-answer. The upstream's pieces are read here, not in
        a generator of their own: each delta and record would pass one more generator."""
        for index, alias in enumerate(chain):
            # Told before admission: between admitting (which may take a half-open breaker's one trial)
            # and the call that gives the trial back, nothing may wait on the consumer.
            call = self._open[step.layer, step.slot] = CallStarted(
                step.layer, step.role, alias, self.since_start(), step.slot
            )
            yield call
            spec = self._spec(chain, index, messages, params, slot, step)
            if spec is None:  # not made: its record is the slot's last
                yield self.finished(slot.records[-1], step.slot)
                continue
            started, sent, answer = time.perf_counter(), False, None
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
                            yield CallDelta(step.layer, step.role, alias, piece, step.slot)
                record = _answered(step, alias, started, answer, fallback_for=chain[0] if index else None)
            except Failure as exc:
                record = _record(step, alias, "error", started, error=exc.message, failure=exc.kind)
                slot.records.append(record)
                slot.last_failure = exc
                yield self.finished(record, step.slot)
                if sent:
                    raise
                continue
            except asyncio.CancelledError:
                cancelled = f"model {alias}: cancelled"
                slot.records.append(
                    _record(step, alias, "cancelled", started, error=cancelled, failure=FailureKind.CANCELLED)
                )
                raise
            slot.records.append(record)
            slot.answer, slot.answered_by = answer, alias
            yield self.finished(record, step.slot)
            return

    def _spec(
        self,
        chain: list[str],
        index: int,
        messages: list[Message],
        params: dict[str, Any],
        slot: Slot,
        step: Step,
    ) -> CallSpec | None:
        """The call to make for `chain[index]`, or None when it is not made (its record put in `slot`):
        the input is known not to fit (no upstream 400 needed to find out), or the model's circuit is
        open. The final call's last option is made even so, as no answer at all is worse than a call to
        a model that may have recovered."""
        alias = chain[index]
        entry = self._catalogue.models[alias]
        call_params = self._params(alias, params, step)
        too_long = overflow(entry, messages, call_params)
        if too_long is not None:
            failure, error = FailureKind.CONTEXT_OVERFLOW, too_long
        elif not self._backend.admit(alias) and not (step.final and index == len(chain) - 1):
            failure = FailureKind.CIRCUIT_OPEN
            error = f"model {alias}: skipped while its circuit breaker is open"
        else:
            call_messages = text_only(messages) if entry.text_only else messages
            return CallSpec(step.layer, step.role, alias, call_messages, call_params)
        slot.records.append(
            CallRecord(step.layer, step.role, alias, "skipped", 0.0, error=error, failure=failure)
        )
        return None

    def _params(self, alias: str, request: dict[str, Any], step: Step) -> dict[str, Any]:
        """Merge the model's configured params with the request's.

        A proposer keeps what its model config pins; the aggregator and direct calls take the client's.
        """
        model = self._catalogue.models[alias].params
        params = {**model, **request} if step.final or step.acting else {**request, **model}
        if step.sample is not None:  # samples of one model must differ, even under the client's seed
            seed = params.get("seed")
            params["seed"] = (seed if isinstance(seed, int) else 0) + step.sample
            if not params.get("temperature"):
                params["temperature"] = SAMPLE_TEMPERATURE
        if step.output_cap is not None:
            for name in ("max_tokens", "max_completion_tokens"):
                asked = params.get(name)
                if isinstance(asked, int) and asked > step.output_cap:
                    params[name] = step.output_cap
            if "max_tokens" not in params and "max_completion_tokens" not in params:
                params["max_tokens"] = step.output_cap
        return params

    def since_start(self) -> float:
        return time.perf_counter() - self._started

    def finished(self, record: CallRecord, slot: int) -> CallFinished:
        """The event that ends a call of the run."""
        self._open.pop((record.layer, slot), None)
        return CallFinished(record, self.since_start(), slot)

    def abandoned(self, kind: FailureKind, why: str) -> list[CallFinished]:
        """The ends of the calls still open when the run stopped waiting for them (its deadline passed):
        each `cancelled`, with `why`, so every CallStarted has its CallFinished."""
        now = self.since_start()
        ends = [
            CallFinished(
                CallRecord(
                    call.layer,
                    call.role,
                    call.model,
                    "cancelled",
                    now - call.at_s,
                    error=f"model {call.model}: {why}",
                    failure=kind,
                ),
                now,
                call.slot,
            )
            for call in self._open.values()
        ]
        self._open.clear()
        return ends


def _record(step: Step, alias: str, status: CallStatus, started: float, **details: Any) -> CallRecord:
    """What a call made at `started` (perf_counter) did."""
    return CallRecord(step.layer, step.role, alias, status, time.perf_counter() - started, **details)


def _answered(
    step: Step, alias: str, started: float, answer: Answer | None, fallback_for: str | None
) -> CallRecord:
    """The record of a call that ended; raises a `bad_response` Failure if it gave no answer."""
    if answer is None:
        raise Failure(
            FailureKind.BAD_RESPONSE, f"model {alias}: the call ended without an answer", model=alias
        )
    return _record(
        step,
        alias,
        "ok",
        started,
        usage=answer.usage,
        cost_usd=answer.cost_usd,
        ttft_s=answer.ttft_s,
        text=answer.text,
        fallback_for=fallback_for,
        tool_calls=len(answer.tool_calls or ()),
    )
