"""Shadow evaluation on live traffic. A pipeline with `shadow` has a share of its successful requests
evaluated in the background: once the response's last byte is sent, the baseline answers the same
request and the judge compares the two answers in both orders, as `moa-gateway eval` does.

It never delays a client: it starts after the response (the HTTP edge runs what was put on the
request's `after_response` list), holds no client slot, is capped per pipeline (`max_concurrent`; beyond, new ones are
dropped, not queued), is dropped first when the gateway is busy or draining, and cancelled at shutdown.
Its calls count with role `shadow` (baseline) and `judge`; verdicts in `moa_eval_verdicts_total`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from moa_gateway.config import GatewayConfig, ShadowConfig
from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.core.failures import Failure
from moa_gateway.core.tokens import message_text
from moa_gateway.core.types import Message, MoaResult, Role
from moa_gateway.eval.answers import AnswerError, ServiceAnswerer
from moa_gateway.eval.judge import JudgePrompt, candidate_score, load_prompt
from moa_gateway.eval.runner import judge_game
from moa_gateway.eval.stats import pair_outcome
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
        self._refusal = refusal
        self._prompt = prompt or load_prompt("pairwise")
        self._rng = rng or random.Random()
        self._running: dict[str, int] = dict.fromkeys(shadows, 0)
        self._tasks: set[asyncio.Task[None]] = set()

    def offer(self, request: ChatCompletionRequest, run: ChatRun, after_response: AfterResponse) -> None:
        """ChatService's `after_prepare` (live traffic only): sample the request, and if taken, put its
        evaluation on the request's `after_response`, which the HTTP edge starts once the response is sent.
        Requests with their own topology are not the pipeline as configured."""
        pipeline = run.plan.pipeline
        shadow = self._shadows.get(pipeline) if pipeline else None
        if shadow is None or pipeline is None:
            return
        if request.moa.layers is not None or request.moa.aggregator is not None:
            return
        if self._rng.random() >= shadow.sample_rate:
            return
        after_response.append(lambda result: self._start(pipeline, shadow, request, result))

    async def close(self) -> None:
        """Cancel every shadow evaluation in progress (shutdown: they are dropped first)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    @property
    def running(self) -> int:
        return len(self._tasks)

    def _start(
        self, pipeline: str, shadow: ShadowConfig, request: ChatCompletionRequest, result: MoaResult
    ) -> None:
        reason = self._refusal()
        if reason is None and self._running[pipeline] >= shadow.max_concurrent:
            reason = "capacity"
        if reason is None and not result.text:
            return  # nothing to compare (a tool call): not a verdict, not a drop
        if reason is not None:
            self._metrics.shadow_dropped.labels(pipeline, reason).inc()
            return
        self._running[pipeline] += 1
        task = asyncio.create_task(self._evaluate(pipeline, shadow, request, result.text))
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self._running[pipeline] -= 1
            if done.cancelled():  # shutdown, whether it had started or not
                self._metrics.shadow_dropped.labels(pipeline, "shutdown").inc()

        task.add_done_callback(finished)

    async def _evaluate(
        self, pipeline: str, shadow: ShadowConfig, request: ChatCompletionRequest, answer: str
    ) -> None:
        try:
            verdict, baseline_cost, judge_cost = await self._verdict(shadow, request, answer)
        except _Dropped as dropped:
            self._metrics.shadow_dropped.labels(pipeline, str(dropped)).inc()
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
        if self._refusal() == "shutdown":  # draining: the judge's calls are not worth starting
            raise _Dropped("shutdown")
        question = _question(request.message_dicts())
        orders = [(answer, baseline.text), (baseline.text, answer)]
        try:
            games = await asyncio.gather(
                *(
                    judge_game(
                        self._judge, shadow.judge, "pairwise", subject, self._prompt.messages(question, pair)
                    )
                    for subject, pair in zip(("candidate_a", "candidate_b"), orders, strict=True)
                )
            )
        except AnswerError:
            return "error", baseline.cost_usd, 0.0
        judge_cost = sum(reply.cost_usd for game in games for reply in game.replies)
        first, second = games
        if first.label is None or second.label is None:
            return "error", baseline.cost_usd, judge_cost
        outcome, _ = pair_outcome(candidate_score(first.label, True), candidate_score(second.label, False))
        return outcome, baseline.cost_usd, judge_cost


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


def _question(messages: list[Message]) -> str:
    """What the judge is shown as the prompt: the user's message, or the conversation, role by role."""
    turns = [m for m in messages if m.get("role") != "system"]
    if len(turns) == 1:
        return message_text(turns[0])
    return "\n\n".join(f"[{m.get('role')}] {message_text(m)}" for m in turns)
