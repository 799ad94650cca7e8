"""One eval run: each item answered by the candidate and the baseline side by side (turn by turn), then
judged: pairwise twice with the positions swapped, or each answer graded alone. An unparseable verdict
is asked for once more; after that the item counts as unparseable, not as a tie."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from moa_gateway.core.types import Message
from moa_gateway.eval.answers import Answered, Answerer, AnswerError
from moa_gateway.eval.dataset import EvalItem
from moa_gateway.eval.judge import (
    JudgePrompt,
    Mode,
    candidate_score,
    parse_pairwise,
    parse_rating,
    with_reminder,
)
from moa_gateway.eval.stats import Outcome, pair_outcome, single_outcome


@dataclass(frozen=True)
class EvalSpec:
    candidate: str
    baseline: str
    judge: str
    mode: Mode = "pairwise"
    concurrency: int = 8


@dataclass(frozen=True)
class Transcript:
    """One model's answers to an item's turns."""

    answers: list[Answered]

    @property
    def text(self) -> str:
        """What the judge is shown: the answer, or each turn's answer, numbered."""
        if len(self.answers) == 1:
            return self.answers[0].text
        return "\n\n".join(f"Turn {i}: {a.text}" for i, a in enumerate(self.answers, 1))

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.answers)

    @property
    def latency_s(self) -> float:
        return sum(a.latency_s for a in self.answers)

    @property
    def prompt_tokens(self) -> int:
        return sum(a.prompt_tokens for a in self.answers)

    @property
    def completion_tokens(self) -> int:
        return sum(a.completion_tokens for a in self.answers)


@dataclass(frozen=True)
class Game:
    """One judge verdict: pairwise, with the candidate as A or as B; single, on one side's answer."""

    subject: str  # "candidate_a" / "candidate_b" (pairwise), "candidate" / "baseline" (single)
    replies: list[Answered]  # the judge's replies: two when the first had no verdict
    label: str | None = None  # pairwise verdict label
    rating: float | None = None  # single-mode rating

    @property
    def parsed(self) -> bool:
        return self.label is not None or self.rating is not None


@dataclass
class ItemResult:
    item: EvalItem
    candidate: Transcript | None = None
    baseline: Transcript | None = None
    games: list[Game] = field(default_factory=list)
    error: str | None = None  # an answer or a judge call failed: not judged
    outcome: Outcome | None = None  # None: not judged (error, or a verdict unparseable twice)
    inconsistent: bool = False  # pairwise: the two orders disagreed (counted as a tie)

    @property
    def unparseable(self) -> bool:
        return self.error is None and any(not g.parsed for g in self.games)

    @property
    def preference(self) -> float | None:
        """Pairwise: the candidate's mean score over both games, -2..2."""
        scores = [candidate_score(g.label, g.subject == "candidate_a") for g in self.games if g.label]
        return sum(scores) / len(scores) if len(scores) == 2 else None

    def rating(self, subject: str) -> float | None:
        return next((g.rating for g in self.games if g.subject == subject), None)

    @property
    def judge_cost_usd(self) -> float:
        return sum(r.cost_usd for g in self.games for r in g.replies)


async def run_eval(
    items: list[EvalItem],
    spec: EvalSpec,
    answers: Answerer,
    judge: Answerer,
    prompt: JudgePrompt,
    on_done: Callable[[ItemResult], None] | None = None,
) -> list[ItemResult]:
    """Every item's result, in the dataset's order; `spec.concurrency` items at a time."""
    semaphore = asyncio.Semaphore(spec.concurrency)
    results: list[ItemResult] = [ItemResult(item) for item in items]

    async def one(result: ItemResult) -> None:
        async with semaphore:
            await _evaluate(result, spec, answers, judge, prompt)
        if on_done is not None:
            on_done(result)

    async with asyncio.TaskGroup() as group:
        for result in results:
            group.create_task(one(result))
    return results


async def _evaluate(
    result: ItemResult, spec: EvalSpec, answers: Answerer, judge: Answerer, prompt: JudgePrompt
) -> None:
    item = result.item
    # Both sides run to their end even if one fails, so what did answer is cached for the next run.
    candidate, baseline = await asyncio.gather(
        _converse(answers, spec.candidate, item),
        _converse(answers, spec.baseline, item),
        return_exceptions=True,
    )
    for side in (candidate, baseline):
        if isinstance(side, AnswerError):
            result.error = str(side)
        elif isinstance(side, BaseException):
            raise side
    if result.error is not None:
        return
    assert isinstance(candidate, Transcript) and isinstance(baseline, Transcript)
    result.candidate, result.baseline = candidate, baseline
    if spec.mode == "pairwise":
        asks = [
            ("candidate_a", prompt.messages(item.question, (candidate.text, baseline.text), item.reference)),
            ("candidate_b", prompt.messages(item.question, (baseline.text, candidate.text), item.reference)),
        ]
    else:
        asks = [
            ("candidate", prompt.messages(item.question, candidate.text, item.reference)),
            ("baseline", prompt.messages(item.question, baseline.text, item.reference)),
        ]
    games = await asyncio.gather(
        *(judge_game(judge, spec.judge, spec.mode, subject, messages) for subject, messages in asks),
        return_exceptions=True,
    )
    for game in games:
        if isinstance(game, AnswerError):
            result.error = f"judge: {game}"
        elif isinstance(game, BaseException):
            raise game
        else:
            result.games.append(game)
    if result.error is not None or result.unparseable:
        return
    first, second = result.games
    if spec.mode == "pairwise":
        assert first.label is not None and second.label is not None
        result.outcome, result.inconsistent = pair_outcome(
            candidate_score(first.label, True), candidate_score(second.label, False)
        )
    else:
        assert first.rating is not None and second.rating is not None
        result.outcome = single_outcome(first.rating, second.rating)


async def _converse(answers: Answerer, model: str, item: EvalItem) -> Transcript:
    """The model's answers to the item's turns, each turn seeing the conversation so far."""
    messages: list[Message] = []
    answered: list[Answered] = []
    for turn in item.turns:
        messages.append({"role": "user", "content": turn})
        answer = await answers.answer(model, list(messages))
        answered.append(answer)
        messages.append({"role": "assistant", "content": answer.text})
    return Transcript(answered)


async def judge_game(judge: Answerer, model: str, mode: Mode, subject: str, messages: list[Message]) -> Game:
    """One verdict, asked for a second time (with a reminder of the format) if the first has none."""
    replies = [await judge.answer(model, messages)]
    verdict = _parse(mode, replies[0].text)
    if verdict is None:
        replies.append(await judge.answer(model, with_reminder(messages)))
        verdict = _parse(mode, replies[1].text)
    if mode == "pairwise":
        return Game(subject, replies, label=verdict if isinstance(verdict, str) else None)
    return Game(subject, replies, rating=verdict if isinstance(verdict, float) else None)


def _parse(mode: Mode, reply: str) -> str | float | None:
    return parse_pairwise(reply) if mode == "pairwise" else parse_rating(reply)
