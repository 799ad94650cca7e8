"""The MoA runner: proposer layers fanned out concurrently, then the aggregator. No HTTP here.

Reliability lives here too, as policy over the backend's calls: each proposer slot tries its model's
fallbacks and skips models whose circuit is open; a layer goes on once its quorum answered, cancelling
stragglers at its deadline; the final call tries the aggregator's fallback chain, and may fall back to a
proposal; a pipeline deadline bounds the whole request.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from app.config import GatewayConfig
from app.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    quoted,
)
from app.moa.prompts import inject_references
from app.moa.types import (
    Answer,
    CallRecord,
    CallSpec,
    ChatBackend,
    Message,
    MoaResult,
    Role,
    TopologyOverride,
    Usage,
)

_TIMEOUT_CODES = {"upstream_timeout", "layer_deadline"}


@dataclass(frozen=True)
class LayerPlan:
    proposers: list[str]
    min_proposers: int = 1
    deadline_s: float | None = None


@dataclass(frozen=True)
class Plan:
    """What a model id resolves to: a pipeline, or one upstream model (no layers, role `direct`)."""

    model_id: str
    pipeline: str | None
    layers: list[LayerPlan]
    final_chain: list[str]  # the aggregator (or the direct model), then its fallbacks
    prompt: str = ""
    deadline_s: float | None = None
    best_proposal_fallback: bool = False

    @property
    def final_role(self) -> Role:
        return "aggregator" if self.pipeline else "direct"

    @property
    def final_layer(self) -> int:
        return len(self.layers) + 1 if self.pipeline else 0


@dataclass
class _Slot:
    """One proposer position (or the final call): its model, the calls made for it, and its answer."""

    primary: str
    records: list[CallRecord] = field(default_factory=list)
    answer: Answer | None = None
    answered_by: str = ""
    last_error: UpstreamError | None = None


class MoaEngine:
    def __init__(self, config: GatewayConfig, backend: ChatBackend) -> None:
        self._config = config
        self._backend = backend

    def plan(self, model_id: str, override: TopologyOverride | None = None) -> Plan:
        pipeline = self._config.pipelines.get(model_id)
        if pipeline is not None:
            layers = [
                LayerPlan(list(lc.proposers), lc.min_proposers, lc.deadline_s) for lc in pipeline.layers
            ]
            aggregator = pipeline.aggregator
            if override is not None:
                if override.layers is not None:
                    layers = [LayerPlan(list(proposers)) for proposers in override.layers]
                aggregator = override.aggregator or aggregator
            return Plan(
                model_id,
                model_id,
                layers,
                self._config.fallback_chain(aggregator, pipeline.aggregator_fallbacks),
                pipeline.aggregator_prompt,
                pipeline.deadline_s,
                pipeline.on_aggregator_failure == "best_proposal",
            )
        if model_id in self._config.models:
            if override is not None:
                raise InvalidRequestError(
                    "moa.layers and moa.aggregator need a pipeline as the model", param="moa"
                )
            return Plan(model_id, None, [], self._config.fallback_chain(model_id))
        raise ModelNotFoundError(f"The model {quoted(model_id)} does not exist", param="model")

    async def run(self, plan: Plan, messages: list[Message], params: dict[str, Any]) -> MoaResult:
        records: list[CallRecord] = []
        try:
            async with asyncio.timeout_at(self._deadline(plan)):
                proposals, dropped, waited_s = await self._propose(plan, messages, params, records)
                started = time.perf_counter()
                final = _Slot(plan.final_chain[0])
                await self._call_chain(
                    plan, plan.final_chain, self._final_messages(plan, messages, proposals), params, final
                )
                waited_s += time.perf_counter() - started
        except TimeoutError:
            raise _deadline_error(plan) from None
        records.extend(final.records)
        return self._result(plan, proposals, final, records, waited_s, dropped)

    async def stream(
        self, plan: Plan, messages: list[Message], params: dict[str, Any]
    ) -> AsyncIterator[str | MoaResult]:
        """The final model's text deltas as they arrive, then the MoaResult."""
        deadline = self._deadline(plan)
        records: list[CallRecord] = []
        try:
            async with asyncio.timeout_at(deadline):
                proposals, dropped, waited_s = await self._propose(plan, messages, params, records)
            started = time.perf_counter()
            final = _Slot(plan.final_chain[0])
            final_messages = self._final_messages(plan, messages, proposals)
            for index, alias in enumerate(plan.final_chain):
                spec = self._admitted_spec(plan, plan.final_chain, index, final_messages, params, final)
                if spec is None:
                    continue
                call_started = time.perf_counter()
                sent = False
                try:
                    async with contextlib.aclosing(self._backend.stream(spec)) as pieces:
                        while True:
                            # The deadline covers each wait for the upstream, not our client's reads.
                            if deadline is None:
                                piece = await anext(pieces, None)
                            else:
                                async with asyncio.timeout_at(deadline):
                                    piece = await anext(pieces, None)
                            if piece is None:
                                break
                            if isinstance(piece, str):
                                sent = True
                                yield piece
                            else:
                                final.answer, final.answered_by = piece, alias
                except UpstreamError as exc:
                    final.records.append(_error_record(spec, exc, time.perf_counter() - call_started))
                    final.last_error = exc
                    if sent:  # the client has part of this model's answer: no switching now
                        raise
                    continue
                if final.answer is None:
                    raise UpstreamError(f"model {alias}: the stream ended without a result", model=alias)
                final.records.append(
                    _ok_record(spec, final.answer, time.perf_counter() - call_started, index, plan)
                )
                break
            waited_s += time.perf_counter() - started
        except TimeoutError:
            raise _deadline_error(plan) from None
        records.extend(final.records)
        result = self._result(plan, proposals, final, records, waited_s, dropped)
        if result.degraded:  # nothing was streamed yet: the stand-in answer goes out in one piece
            yield result.text
        yield result

    def _deadline(self, plan: Plan) -> float | None:
        return None if plan.deadline_s is None else asyncio.get_running_loop().time() + plan.deadline_s

    async def _propose(
        self, plan: Plan, messages: list[Message], params: dict[str, Any], records: list[CallRecord]
    ) -> tuple[list[tuple[str, Answer]], list[str], float]:
        """Run every proposer layer. Returns the last layer's (model, answer) pairs, the proposers that
        gave no answer, and the time spent waiting."""
        proposals: list[tuple[str, Answer]] = []
        dropped: list[str] = []
        waited_s = 0.0
        for number, layer in enumerate(plan.layers, 1):
            layer_messages = self._with_references(plan, messages, [a.text for _, a in proposals])
            started = time.perf_counter()
            slots = await self._fan_out(plan, number, layer, layer_messages, params)
            waited_s += time.perf_counter() - started
            for slot in slots:
                records.extend(slot.records)
            proposals = [(s.answered_by, s.answer) for s in slots if s.answer is not None]
            dropped += [s.primary for s in slots if s.answer is None]
            if len(proposals) < layer.min_proposers:
                raise _quorum_failure(number, layer, slots)
        return proposals, dropped, waited_s

    async def _fan_out(
        self, plan: Plan, number: int, layer: LayerPlan, messages: list[Message], params: dict[str, Any]
    ) -> list[_Slot]:
        slots = [_Slot(alias) for alias in layer.proposers]
        # A TaskGroup ties every call to this request: if the request is cancelled, so are they.
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(
                    self._call_chain(
                        plan, self._config.fallback_chain(s.primary), messages, params, s, number
                    )
                )
                for s in slots
            ]
            if layer.deadline_s is not None:
                await asyncio.wait(tasks, timeout=layer.deadline_s)
                for task in tasks:
                    task.cancel()  # a no-op for those that finished
        if layer.deadline_s is not None:
            for slot, task in zip(slots, tasks, strict=True):
                if task.cancelled() and slot.records:
                    slot.records[-1] = replace(
                        slot.records[-1],
                        error=f"model {slot.records[-1].model}: no answer within the layer deadline ({layer.deadline_s:g}s)",
                        error_code="layer_deadline",
                    )
        return slots

    async def _call_chain(
        self,
        plan: Plan,
        chain: list[str],
        messages: list[Message],
        params: dict[str, Any],
        slot: _Slot,
        layer: int | None = None,
    ) -> None:
        """Try the models of `chain` in order until one answers; every call is recorded in `slot`."""
        for index in range(len(chain)):
            spec = self._admitted_spec(plan, chain, index, messages, params, slot, layer)
            if spec is None:
                continue
            started = time.perf_counter()
            try:
                answer = await self._backend.complete(spec)
            except UpstreamError as exc:
                slot.records.append(_error_record(spec, exc, time.perf_counter() - started))
                slot.last_error = exc
                continue
            except asyncio.CancelledError:
                slot.records.append(
                    CallRecord(
                        spec.layer,
                        spec.role,
                        spec.model,
                        "cancelled",
                        time.perf_counter() - started,
                        error=f"model {spec.model}: cancelled",
                        error_code="cancelled",
                    )
                )
                raise
            slot.records.append(_ok_record(spec, answer, time.perf_counter() - started, index, plan, chain))
            slot.answer, slot.answered_by = answer, spec.model
            return

    def _admitted_spec(
        self,
        plan: Plan,
        chain: list[str],
        index: int,
        messages: list[Message],
        params: dict[str, Any],
        slot: _Slot,
        layer: int | None = None,
    ) -> CallSpec | None:
        """The call to make for chain[index], or None (recorded as skipped) while its circuit is open.

        A proposer is skipped outright; the final call's last option is made even so, as no answer at
        all is worse than a call to a model that may have recovered.
        """
        alias = chain[index]
        proposer = layer is not None
        role: Role = "proposer" if proposer else plan.final_role
        number = layer if layer is not None else plan.final_layer
        last_resort = not proposer and index == len(chain) - 1
        if not self._backend.admit(alias) and not last_resort:
            slot.records.append(
                CallRecord(
                    number,
                    role,
                    alias,
                    "skipped",
                    0.0,
                    error=f"model {alias}: skipped while its circuit breaker is open",
                    error_code="circuit_open",
                )
            )
            return None
        return CallSpec(number, role, alias, messages, self._params(alias, params, pinned=proposer))

    def _result(
        self,
        plan: Plan,
        proposals: list[tuple[str, Answer]],
        final: _Slot,
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
        return MoaResult(
            plan.pipeline, answer.text, answer.finish_reason, records, waited_s, dropped, model, degraded
        )

    def _final_messages(
        self, plan: Plan, messages: list[Message], proposals: list[tuple[str, Answer]]
    ) -> list[Message]:
        return self._with_references(plan, messages, [answer.text for _, answer in proposals])

    def _with_references(self, plan: Plan, messages: list[Message], references: list[str]) -> list[Message]:
        return inject_references(messages, references, plan.prompt) if references else messages

    def _params(self, alias: str, request: dict[str, Any], *, pinned: bool) -> dict[str, Any]:
        """Merge the model's configured params with the request's.

        A proposer keeps what its model config pins; the aggregator and direct calls take the client's.
        """
        model = self._config.models[alias].params
        return {**request, **model} if pinned else {**model, **request}


def _ok_record(
    spec: CallSpec, answer: Answer, latency_s: float, index: int, plan: Plan, chain: list[str] | None = None
) -> CallRecord:
    chain = chain or plan.final_chain
    return CallRecord(
        spec.layer,
        spec.role,
        spec.model,
        "ok",
        latency_s,
        usage=answer.usage,
        cost_usd=answer.cost_usd,
        ttft_s=answer.ttft_s,
        text=answer.text,
        fallback_for=chain[0] if index else None,
    )


def _error_record(spec: CallSpec, exc: UpstreamError, latency_s: float) -> CallRecord:
    return CallRecord(
        spec.layer, spec.role, spec.model, "error", latency_s, Usage(), error=exc.message, error_code=exc.code
    )


def _failure_kind(codes: set[str | None]) -> type[UpstreamError]:
    """All failures alike keep their class (504 for timeouts, 400 for rejections); else 502."""
    if codes and codes <= _TIMEOUT_CODES:
        return UpstreamTimeoutError
    if codes == {UpstreamRejectedError.code}:
        return UpstreamRejectedError
    return UpstreamError


def _quorum_failure(number: int, layer: LayerPlan, slots: list[_Slot]) -> UpstreamError:
    """Too few proposers of a layer answered: one error naming each failed model and why."""
    failed = [s.records[-1] for s in slots if s.answer is None and s.records]
    answered = len(slots) - len(failed)
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in failed)
    message = f"layer {number}: {answered} of {len(slots)} proposers answered, {layer.min_proposers} needed ({reasons})"
    return _failure_kind({r.error_code for r in failed})(message, model=failed[0].model if failed else "")


def _chain_failure(plan: Plan, final: _Slot) -> UpstreamError:
    """The aggregator (or direct model) and every fallback failed."""
    if len(final.records) == 1 and final.last_error is not None:
        return final.last_error  # one model, one error: keep it as it was
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in final.records)
    what = "aggregator" if plan.pipeline else "model"
    message = f"{plan.model_id}: the {what} and its fallbacks all failed ({reasons})"
    return _failure_kind({r.error_code for r in final.records})(message, model=plan.final_chain[0])


def _deadline_error(plan: Plan) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"{plan.model_id}: no answer within the pipeline deadline ({plan.deadline_s:g}s)",
        model=plan.final_chain[0],
    )
