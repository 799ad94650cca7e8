"""Judge prompts (one editable file each, in `app/moa_gateway/eval/prompts/`) rendered to messages, and the judge's
verdicts parsed: Arena-Hard's pairwise labels `[[A>>B]]` ... `[[B>>A]]`, MT-Bench's `[[rating]]`.

A prompt file has sections headed `### system`, `### user` and, optionally, `### reference`. The user
section holds `{question}` and `{answer_a}`/`{answer_b}` (pairwise) or `{answer}` (single), and
`{reference}`, which becomes the reference section (itself holding `{reference}`) when the dataset
gives a reference answer, else nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from moa_gateway.core.types import Message

Mode = Literal["pairwise", "single"]
PROMPTS_DIR = Path(__file__).parent / "prompts"
RETRY_REMINDER = (
    "\n\nImportant: end your reply with your final verdict in exactly the format asked for above."
)
# Candidate's-view score of a label when the candidate is assistant A (negated when it is B).
_PAIRWISE_SCORE = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
_LABEL = re.compile(r"\[\[\s*([AB])\s*(>>|>|=|<<|<)\s*([AB])\s*\]\]")
_RATING = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_RATING_LOOSE = re.compile(r"\[\s*(\d+(?:\.\d+)?)\s*\]")
_SECTION = re.compile(r"^### (system|user|reference)[ \t]*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{(question|answer_a|answer_b|answer|reference)\}")


class PromptFileError(ValueError):
    """A judge prompt file without the sections or placeholders its mode needs."""


@dataclass(frozen=True)
class JudgePrompt:
    mode: Mode
    system: str
    user: str
    reference: str = ""

    def messages(
        self, question: str, answers: tuple[str, str] | str, reference: str | None = None
    ) -> list[Message]:
        """The judge's messages: `answers` is (A, B) in pairwise mode, the one answer in single mode."""
        values = {"question": question, "reference": ""}
        if reference and self.reference:
            values["reference"] = "\n" + _fill(self.reference, {"reference": reference}) + "\n"
        if isinstance(answers, tuple):
            values |= {"answer_a": answers[0], "answer_b": answers[1]}
        else:
            values["answer"] = answers
        messages: list[Message] = [{"role": "user", "content": _fill(self.user, values)}]
        return [{"role": "system", "content": self.system}, *messages] if self.system else messages


def load_prompt(mode: Mode, path: Path | None = None) -> JudgePrompt:
    """The prompt file of `mode` (the shipped one unless `path`); raises PromptFileError, OSError."""
    path = path or PROMPTS_DIR / f"{mode}.txt"
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    user = sections.get("user", "")
    needed = ["{question}", "{answer_a}", "{answer_b}"] if mode == "pairwise" else ["{question}", "{answer}"]
    missing = [p for p in needed if p not in user]
    if missing:
        raise PromptFileError(f"{path}: the '### user' section needs {', '.join(missing)}")
    return JudgePrompt(mode, sections.get("system", "").strip(), user, sections.get("reference", "").strip())


def with_reminder(messages: list[Message]) -> list[Message]:
    """The same judge request, asking again for the verdict format (for the one retry)."""
    *head, last = messages
    return [*head, {**last, "content": last["content"] + RETRY_REMINDER}]


def parse_pairwise(reply: str) -> str | None:
    """The verdict label (`A>>B`, `A>B`, `A=B`, `B>A`, `B>>A`), or None if the reply has none or
    several different ones (as Arena-Hard does). `B<A` reads as `A>B`, and so on."""
    labels = {label for match in _LABEL.findall(reply) if (label := _normalised(*match)) is not None}
    return next(iter(labels)) if len(labels) == 1 else None


def candidate_score(label: str, candidate_is_a: bool) -> int:
    """-2..2 from the candidate's side: 2 significantly better, 0 tie, -2 significantly worse."""
    score = _PAIRWISE_SCORE[label]
    return score if candidate_is_a else -score


def parse_rating(reply: str) -> float | None:
    """The last `[[n]]` (else `[n]`) of the reply, if it is from 1 to 10."""
    found = _RATING.findall(reply) or _RATING_LOOSE.findall(reply)
    if not found:
        return None
    rating = float(found[-1])
    return rating if 1 <= rating <= 10 else None


def _normalised(left: str, op: str, right: str) -> str | None:
    if left == right:
        return None
    if op == "=":
        return "A=B"
    if op.startswith("<"):  # `A<B` is `B>A`
        left, right, op = right, left, op.replace("<", ">")
    return f"{left}{op}{right}"


def _fill(template: str, values: dict[str, str]) -> str:
    """Placeholders replaced in one pass: a value holding `{answer_b}` is not expanded again."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
