"""Audits of a pipeline's gate on live traffic: what the gate costs in quality.

With `gate.audit_rate`, that share of a gated pipeline's live requests is sampled when prepared (the run
is marked, so a pass says `moa.gate.audited: true`). If the gate's answer stood, once the response's
last byte is sent the whole pipeline answers the same run without the gate, and the gate's `judge`
compares the two answers in both orders, as shadow evaluation does; the verdict is the pipeline's
against the gate, counted in `moa_gate_audits_total{pipeline,verdict}`. An escalated request needs no
audit: the pipeline answered it.

Like shadow evaluation (app/moa_gateway/eval/background.py) it never delays or fails a client's request:
it starts after the response, is capped per pipeline (`audit_max_concurrent`; beyond, dropped), is
dropped when the gateway is busy or draining, and cancelled at shutdown (`moa_gate_audits_dropped_total`).
Its pipeline's calls count with role `audit`, the judge's with role `judge`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace

from moa_gateway.config import GateConfig, GatewayConfig
from moa_gateway.core.failures import Failure
from moa_gateway.core.types import MoaResult, Role
from moa_gateway.eval.answers import ServiceAnswerer
from moa_gateway.eval.background import Background, pair_verdict, question_of
from moa_gateway.eval.judge import JudgePrompt, load_prompt
from moa_gateway.service.chat import AfterResponse, ChatRun, ChatService
from moa_gateway.telemetry.logs import fields_text
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire.requests import ChatCompletionRequest

logger = logging.getLogger(__name__)


class GateAuditor:
    def __init__(
        self,
        gates: dict[str, GateConfig],
        chat_as: Callable[[Role], ChatService],
        metrics: Metrics,
        refusal: Callable[[], str | None],
        prompt: JudgePrompt | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`gates`: the audited pipelines' gates; `refusal()` says why no audit may start now, or None."""
        self._gates = gates
        self._pipeline_chat = chat_as("audit")
        self._judge = ServiceAnswerer(chat_as("judge"))
        self._metrics = metrics
        self._prompt = prompt or load_prompt("pairwise")
        self._rng = rng or random.Random()
        caps = {pid: gate.audit_max_concurrent for pid, gate in gates.items()}
        self._work = Background(
            caps, refusal, lambda p, why: metrics.gate_audits_dropped.labels(p, why).inc()
        )

    def offer(self, request: ChatCompletionRequest, run: ChatRun, after_response: AfterResponse) -> ChatRun:
        """ChatService's `after_prepare` (live traffic only): sample the request by `audit_rate`; if taken,
        the run is marked (its gate report says `audited`) and its audit goes on `after_response`."""
        pipeline = run.plan.pipeline
        gate = self._gates.get(pipeline) if pipeline else None
        if gate is None or pipeline is None or run.plan.policy.gate is None:
            return run
        if request.moa.layers is not None or request.moa.aggregator is not None:
            return run  # its own topology is not the pipeline as configured
        if self._rng.random() >= gate.audit_rate:
            return run
        marked = replace(run, input=replace(run.input, audit_gate=True))
        after_response.append(lambda result: self._start(pipeline, gate, marked, result))
        return marked

    async def close(self) -> None:
        """Cancel every audit in progress (shutdown)."""
        await self._work.close()

    @property
    def running(self) -> int:
        return self._work.running

    def _start(self, pipeline: str, gate: GateConfig, run: ChatRun, result: MoaResult) -> None:
        if result.gate is None or not result.gate.audited:
            return  # escalated: the pipeline itself answered
        reason = self._work.refusal(pipeline)
        if reason is None and not result.text:
            return  # nothing to compare (a tool call): not a verdict, not a drop
        if reason is not None:
            self._work.drop(pipeline, reason)
            return
        self._work.start(pipeline, lambda: self._audit(pipeline, gate, run, result.text))

    async def _audit(self, pipeline: str, gate: GateConfig, run: ChatRun, gate_answer: str) -> None:
        without_gate = replace(run.plan, policy=replace(run.plan.policy, gate=None))
        full_run = replace(run, plan=without_gate, stream=False, stream_events=False)
        try:
            full = await self._pipeline_chat.complete(full_run)
        except Failure:
            verdict, pipeline_cost, judge_cost = "error", 0.0, 0.0
        else:
            if self._work.draining:  # the judge's calls are not worth starting
                self._work.drop(pipeline, "shutdown")
                return
            assert gate.judge is not None  # the config requires one with audit_rate > 0
            question = question_of(run.input.messages)
            verdict, judge_cost = await pair_verdict(
                self._judge, gate.judge, self._prompt, question, full.text, gate_answer
            )
            pipeline_cost = full.cost_usd
        self._metrics.gate_audits.labels(pipeline, verdict).inc()
        fields = {
            "event": "gate_audit",
            "pipeline": pipeline,
            "gate": gate.model,
            "judge": gate.judge,
            "verdict": verdict,
            "pipeline_cost_usd": round(pipeline_cost, 10),
            "judge_cost_usd": round(judge_cost, 10),
        }
        logger.info("%s", fields_text(fields), extra={"fields": fields})


def gate_auditor(
    config: GatewayConfig,
    chat_as: Callable[[Role], ChatService],
    metrics: Metrics,
    refusal: Callable[[], str | None],
) -> GateAuditor | None:
    """The auditor of the config's pipelines whose gate has an `audit_rate`, or None if none has."""
    gates = {
        pid: p.gate for pid, p in config.pipelines.items() if p.gate is not None and p.gate.audit_rate > 0
    }
    return GateAuditor(gates, chat_as, metrics, refusal) if gates else None
