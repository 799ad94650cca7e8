"""The MoA runner: proposer layers fanned out concurrently, then the aggregator. No HTTP here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.config import GatewayConfig
from app.errors import ModelNotFoundError, UpstreamError, UpstreamRejectedError, UpstreamTimeoutError
from app.moa.prompts import inject_references
from app.moa.types import Answer, CallRecord, CallSpec, ChatBackend, Message, MoaResult, Role


@dataclass(frozen=True)
class Plan:
    """What a model id resolves to: a pipeline, or one upstream model (no layers, role `direct`)."""

    model_id: str
    pipeline: str | None
    layers: list[list[str]]
    aggregator: str
    prompt: str = ""

    @property
    def final_role(self) -> Role:
        return "aggregator" if self.pipeline else "direct"


class MoaEngine:
    def __init__(self, config: GatewayConfig, backend: ChatBackend) -> None:
        self._config = config
        self._backend = backend

    def plan(self, model_id: str) -> Plan:
        pipeline = self._config.pipelines.get(model_id)
        if pipeline is not None:
            layers = [list(layer.proposers) for layer in pipeline.layers]
            return Plan(model_id, model_id, layers, pipeline.aggregator, pipeline.aggregator_prompt)
        if model_id in self._config.models:
            return Plan(model_id, None, [], model_id)
        raise ModelNotFoundError(f"The model '{model_id}' does not exist", param="model")

    async def run(self, plan: Plan, messages: list[Message], params: dict[str, Any]) -> MoaResult:
        records, final_spec, waited_s = await self._propose(plan, messages, params)
        started = time.perf_counter()
        answer = await self._backend.complete(final_spec)
        final_s = time.perf_counter() - started
        records.append(_ok_record(final_spec, answer, final_s))
        return MoaResult(plan.pipeline, answer.text, answer.finish_reason, records, waited_s + final_s)

    async def stream(
        self, plan: Plan, messages: list[Message], params: dict[str, Any]
    ) -> AsyncIterator[str | MoaResult]:
        """The final model's text deltas as they arrive, then the MoaResult."""
        records, final_spec, waited_s = await self._propose(plan, messages, params)
        started = time.perf_counter()
        answer: Answer | None = None
        async for piece in self._backend.stream(final_spec):
            if isinstance(piece, str):
                yield piece
            else:
                answer = piece
        if answer is None:
            raise UpstreamError(
                f"model {final_spec.model}: the stream ended without a result", model=final_spec.model
            )
        # Time between the final model's chunks counts as waiting on it, even while we forward them.
        final_s = time.perf_counter() - started
        records.append(_ok_record(final_spec, answer, final_s))
        yield MoaResult(plan.pipeline, answer.text, answer.finish_reason, records, waited_s + final_s)

    async def _propose(
        self, plan: Plan, messages: list[Message], params: dict[str, Any]
    ) -> tuple[list[CallRecord], CallSpec, float]:
        """Run every proposer layer; return their records, the final call to make, and the time waited."""
        records: list[CallRecord] = []
        references: list[str] = []
        waited_s = 0.0
        for number, proposers in enumerate(plan.layers, 1):
            layer_messages = self._with_references(plan, messages, references)
            specs = [
                CallSpec(number, "proposer", alias, layer_messages, self._params(alias, params, pinned=True))
                for alias in proposers
            ]
            started = time.perf_counter()
            layer_records = await self._fan_out(specs)
            waited_s += time.perf_counter() - started
            records.extend(layer_records)
            answered = [r for r in layer_records if r.status == "ok"]
            if not answered:
                raise _layer_failure(number, layer_records)
            references = [r.text or "" for r in answered]
        final = CallSpec(
            len(plan.layers) + 1 if plan.pipeline else 0,
            plan.final_role,
            plan.aggregator,
            self._with_references(plan, messages, references),
            self._params(plan.aggregator, params, pinned=False),
        )
        return records, final, waited_s

    async def _fan_out(self, specs: list[CallSpec]) -> list[CallRecord]:
        # A TaskGroup ties every call to this request: if the request is cancelled, so are they.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._call_proposer(spec)) for spec in specs]
        return [task.result() for task in tasks]

    async def _call_proposer(self, spec: CallSpec) -> CallRecord:
        started = time.perf_counter()
        try:
            answer = await self._backend.complete(spec)
        except UpstreamError as exc:
            latency_s = time.perf_counter() - started
            return CallRecord(
                spec.layer, spec.role, spec.model, "error", latency_s, error=exc.message, error_code=exc.code
            )
        return _ok_record(spec, answer, time.perf_counter() - started)

    def _with_references(self, plan: Plan, messages: list[Message], references: list[str]) -> list[Message]:
        return inject_references(messages, references, plan.prompt) if references else messages

    def _params(self, alias: str, request: dict[str, Any], *, pinned: bool) -> dict[str, Any]:
        """Merge the model's configured params with the request's.

        A proposer keeps what its model config pins; the aggregator and direct calls take the client's.
        """
        model = self._config.models[alias].params
        return {**request, **model} if pinned else {**model, **request}


def _ok_record(spec: CallSpec, answer: Answer, latency_s: float) -> CallRecord:
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
    )


def _layer_failure(layer: int, records: list[CallRecord]) -> UpstreamError:
    """Every proposer of a layer failed: one error naming each model and why.

    When all failed the same way (all timed out, all rejected the request) the error keeps that class,
    so the client sees 504 or 400 rather than a generic 502.
    """
    reasons = "; ".join(f"{r.model}: {r.error}" for r in records)
    message = f"layer {layer}: every proposer failed ({reasons})"
    codes = {r.error_code for r in records}
    kind: type[UpstreamError] = UpstreamError
    if codes == {UpstreamTimeoutError.code}:
        kind = UpstreamTimeoutError
    elif codes == {UpstreamRejectedError.code}:
        kind = UpstreamRejectedError
    return kind(message, model=records[0].model)
