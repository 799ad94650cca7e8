"""Shadow evaluation on live traffic. A pipeline with `shadow` has a share of its successful requests
evaluated in the background: once the response's last byte is sent, the baseline answers the same
request and the judge compares the two answers in both orders, as `moa-gateway eval` does.

It never delays a client: it starts after the response (the HTTP edge runs what was put on the
request's `after_response` list), holds no client slot, is capped per pipeline (`max_concurrent`; beyond, new ones are
dropped, not queued), is dropped first when the gateway is busy or draining, and cancelled at shutdown.
Its calls count with role `shadow` (baseline) and `judge`; verdicts in `moa_eval_verdicts_total`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from moa_gateway.config import GatewayConfig, ShadowConfig
from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.core.failures import Failure
from moa_gateway.core.types import MoaResult, Role
from moa_gateway.eval.answers import ServiceAnswerer
from moa_gateway.eval.background import Background, pair_verdict, question_of
from moa_gateway.eval.judge import JudgePrompt, load_prompt
from moa_gateway.service.chat import AfterResponse, ChatRun, ChatService
from moa_gateway.telemetry.logs import fields_text
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire.requests import ChatCompletionRequest, MoaOptions

logger = logging.getLogger(__name__)


class ShadowEvaluator:
    def __init__(
        self,
        shadows: dict[str, ShadowConfig],
        chat_as: Callable[[Role], ChatService],
        metrics: Metrics,
        refusal: Callable[[], str | None],
        prompt: JudgePrompt | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`refusal()` says why no shadow work may start now ("load", "shutdown"), or None."""
        self._shadows = shadows
        self._baseline_chat = chat_as("shadow")
        self._judge = ServiceAnswerer(chat_as("judge"))
        self._metrics = metrics
        self._prompt = prompt or load_prompt("pairwise")
        self._rng = rng or random.Random()
        caps = {pid: shadow.max_concurrent for pid, shadow in shadows.items()}
        self._work = Background(
            caps, refusal, lambda p, reason: metrics.shadow_dropped.labels(p, reason).inc()
        )

    def offer(self, request: ChatCompletionRequest, run: ChatRun, after_response: AfterResponse) -> ChatRun:
        """ChatService's `after_prepare` (live traffic only): sample the request, and if taken, put its
        evaluation on the request's `after_response`, which the HTTP edge starts once the response is sent.
        Requests with their own topology are not the pipeline as configured. The run is left as it is."""
        pipeline = run.plan.pipeline
        shadow = self._shadows.get(pipeline) if pipeline else None
        if shadow is None or pipeline is None:
            return run
        if request.moa.layers is not None or request.moa.aggregator is not None:
            return run
        if self._rng.random() >= shadow.sample_rate:
            return run
        after_response.append(lambda result: self._start(pipeline, shadow, request, result))
        return run

    async def close(self) -> None:
        """Cancel every shadow evaluation in progress (shutdown: they are dropped first)."""
        await self._work.close()

    @property
    def running(self) -> int:
        return self._work.running

    def _start(
        self, pipeline: str, shadow: ShadowConfig, request: ChatCompletionRequest, result: MoaResult
    ) -> None:
        reason = self._work.refusal(pipeline)
        if reason is None and not result.text:
            return  # nothing to compare (a tool call): not a verdict, not a drop
        if reason is not None:
            self._work.drop(pipeline, reason)
            return
        self._work.start(pipeline, lambda: self._evaluate(pipeline, shadow, request, result.text))

    async def _evaluate(
        self, pipeline: str, shadow: ShadowConfig, request: ChatCompletionRequest, answer: str
    ) -> None:
        try:
            verdict, baseline_cost, judge_cost = await self._verdict(shadow, request, answer)
        except _Dropped as dropped:
            self._work.drop(pipeline, str(dropped))
            return
        self._metrics.eval_verdicts.labels(pipeline, shadow.baseline, verdict).inc()
        fields = {
            "event": "shadow_verdict",
            "pipeline": pipeline,
            "baseline": shadow.baseline,
            "judge": shadow.judge,
            "verdict": verdict,
            "baseline_cost_usd": round(baseline_cost, 10),
            "judge_cost_usd": round(judge_cost, 10),
        }
        logger.info("%s", fields_text(fields), extra={"fields": fields})

    async def _verdict(
        self, shadow: ShadowConfig, request: ChatCompletionRequest, answer: str
    ) -> tuple[str, float, float]:
        """("win" | "tie" | "loss" | "error", the baseline's cost, the judge's cost)."""
        twin = request.model_copy(
            update={"model": shadow.baseline, "stream": False, "stream_options": None, "moa": MoaOptions()}
        )
        try:
            baseline = await self._baseline_chat.complete(await self._baseline_chat.prepare(twin, ANONYMOUS))
        except Failure:
            return "error", 0.0, 0.0
        if self._work.draining:  # draining: the judge's calls are not worth starting
            raise _Dropped("shutdown")
        question = question_of(request.message_dicts())
        verdict, judge_cost = await pair_verdict(
            self._judge, shadow.judge, self._prompt, question, answer, baseline.text
        )
        return verdict, baseline.cost_usd, judge_cost


class _Dropped(Exception):
    """The evaluation stops here; the message is the reason."""


def shadow_evaluator(
    config: GatewayConfig,
    chat_as: Callable[[Role], ChatService],
    metrics: Metrics,
    refusal: Callable[[], str | None],
) -> ShadowEvaluator | None:
    """The evaluator of the config's pipelines that have `shadow`, or None if none has."""
    shadows = {pid: p.shadow for pid, p in config.pipelines.items() if p.shadow is not None}
    return ShadowEvaluator(shadows, chat_as, metrics, refusal) if shadows else None
