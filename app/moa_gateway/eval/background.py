"""What shadow evaluation and gate audits share: background work on live traffic, bounded per pipeline
and dropped first (beyond its cap, when the gateway is busy or draining, and at shutdown), and the
judge's pairwise verdict in both orders, as `moa-gateway eval` gives it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from moa_gateway.core.tokens import message_text
from moa_gateway.core.types import Message
from moa_gateway.eval.answers import AnswerError, ServiceAnswerer
from moa_gateway.eval.judge import JudgePrompt, candidate_score
from moa_gateway.eval.runner import judge_game
from moa_gateway.eval.stats import pair_outcome


class Background:
    """Tasks of live traffic's evaluations, at most `caps[pipeline]` at once per pipeline."""

    def __init__(
        self,
        caps: dict[str, int],
        refusal: Callable[[], str | None],
        dropped: Callable[[str, str], None],
    ) -> None:
        """`refusal()` says why no work may start now ("load", "shutdown"), or None; `dropped(pipeline,
        reason)` counts work not done."""
        self._caps = caps
        self._refusal = refusal
        self._dropped = dropped
        self._running: dict[str, int] = dict.fromkeys(caps, 0)
        self._tasks: set[asyncio.Task[None]] = set()

    def refusal(self, pipeline: str) -> str | None:
        """Why new work for `pipeline` may not start now ("capacity", "load", "shutdown"), or None."""
        reason = self._refusal()
        if reason is None and self._running[pipeline] >= self._caps[pipeline]:
            return "capacity"
        return reason

    @property
    def draining(self) -> bool:
        return self._refusal() == "shutdown"

    def drop(self, pipeline: str, reason: str) -> None:
        self._dropped(pipeline, reason)

    def start(self, pipeline: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work()` in the background (the caller checked `refusal` first)."""
        self._running[pipeline] += 1
        task = asyncio.create_task(work())
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            self._running[pipeline] -= 1
            if done.cancelled():  # shutdown, whether it had started or not
                self._dropped(pipeline, "shutdown")

        task.add_done_callback(finished)

    async def close(self) -> None:
        """Cancel every task in progress (shutdown: they are dropped first)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    @property
    def running(self) -> int:
        return len(self._tasks)


async def pair_verdict(
    judge: ServiceAnswerer, model: str, prompt: JudgePrompt, question: str, candidate: str, baseline: str
) -> tuple[str, float]:
    """The judge's verdict on `candidate` against `baseline` ("win" | "tie" | "loss" | "error": a judge
    call failed, or gave no verdict twice), from both orders at once, and what the judge cost."""
    orders = [(candidate, baseline), (baseline, candidate)]
    try:
        games = await asyncio.gather(
            *(
                judge_game(judge, model, "pairwise", subject, prompt.messages(question, pair))
                for subject, pair in zip(("candidate_a", "candidate_b"), orders, strict=True)
            )
        )
    except AnswerError:
        return "error", 0.0
    cost = sum(reply.cost_usd for game in games for reply in game.replies)
    first, second = games
    if first.label is None or second.label is None:
        return "error", cost
    outcome, _ = pair_outcome(candidate_score(first.label, True), candidate_score(second.label, False))
    return outcome, cost


def question_of(messages: list[Message]) -> str:
    """What the judge is shown as the prompt: the user's message, or the conversation, role by role."""
    turns = [m for m in messages if m.get("role") != "system"]
    if len(turns) == 1:
        return message_text(turns[0])
    return "\n\n".join(f"[{m.get('role')}] {message_text(m)}" for m in turns)
