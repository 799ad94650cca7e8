"""The simulator as a judge: it recognises the eval's judge prompts (by the answer markers the shipped
prompt files use) and answers a well-formed verdict, deterministic in the answers it is shown.

Pairwise (Arena-Hard's `[[A>>B]]` ... `[[B>>A]]`): each answer gets a score, its number of distinct
words times a factor from its hash (0.75 to 1.25), so the verdict depends on the answers, not on their
order, and both orders of a pair agree. Single (MT-Bench's `Rating: [[n]]`): the same score, scaled to
1..10. Tests steer the judge with the request's (or the model's) `simulate` object:
`verdict` ("A>B", ... or "unparseable": a reply with no verdict), `prefer` (a model tag: the answer that
holds `[tag]` wins, significantly) and `rating` (1..10).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from moa_gateway.core.tokens import message_text

PAIRWISE_MARKERS = (
    ("<|The Start of Assistant A's Answer|>", "<|The End of Assistant A's Answer|>"),
    ("<|The Start of Assistant B's Answer|>", "<|The End of Assistant B's Answer|>"),
)
SINGLE_MARKERS = ("[The Start of Assistant's Answer]", "[The End of Assistant's Answer]")
VERDICTS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
UNPARSEABLE = "unparseable"
_CLEAR, _SLIGHT = 1.3, 1.08  # score ratios for a significant and a slight preference
_WORD = re.compile(r"[a-z]+")


class JudgeOptionError(ValueError):
    """`simulate.verdict`, `prefer` or `rating` has a value the judge cannot play."""


def judge_text(messages: list[dict[str, Any]], options: Any) -> str | None:
    """The judge's reply if the latest user message is a judge prompt, else None (answer as usual)."""
    prompt = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    steer = options if isinstance(options, dict) else {}
    pair = [_between(prompt, start, end) for start, end in PAIRWISE_MARKERS]
    if pair[0] is not None and pair[1] is not None:
        return _pairwise(pair[0], pair[1], steer)
    single = _between(prompt, *SINGLE_MARKERS)
    if single is not None:
        return _single(single, steer)
    return None


def _pairwise(a: str, b: str, steer: dict[str, Any]) -> str:
    forced = steer.get("verdict")
    if forced is not None:
        if forced == UNPARSEABLE:
            return "Both answers have merits; I cannot decide."
        if forced not in VERDICTS:
            raise JudgeOptionError(f"'simulate.verdict' is one of {', '.join(VERDICTS)} or {UNPARSEABLE}")
        return f"As configured. My final verdict is: [[{forced}]]"
    prefer = steer.get("prefer")
    if isinstance(prefer, str):
        a_pref, b_pref = f"[{prefer}]" in a, f"[{prefer}]" in b
        verdict = "A>>B" if a_pref and not b_pref else "B>>A" if b_pref and not a_pref else "A=B"
        why = (
            f"The answer of {prefer} is preferred."
            if verdict != "A=B"
            else f"Both or neither are {prefer}'s."
        )
        return f"{why} My final verdict is: [[{verdict}]]"
    score_a, score_b = score(a), score(b)
    ratio = score_a / score_b if score_b else float("inf")
    if ratio >= _CLEAR:
        verdict = "A>>B"
    elif ratio >= _SLIGHT:
        verdict = "A>B"
    elif ratio > 1 / _SLIGHT:
        verdict = "A=B"
    elif ratio > 1 / _CLEAR:
        verdict = "B>A"
    else:
        verdict = "B>>A"
    return (
        f"Assistant A's answer scores {score_a:.1f} for breadth, Assistant B's {score_b:.1f}. "
        f"My final verdict is: [[{verdict}]]"
    )


def _single(answer: str, steer: dict[str, Any]) -> str:
    if steer.get("verdict") == UNPARSEABLE:
        return "The answer is fine, I suppose."
    forced = steer.get("rating")
    if forced is not None:
        if not isinstance(forced, int) or not 1 <= forced <= 10:
            raise JudgeOptionError("'simulate.rating' is a whole number from 1 to 10")
        rating = forced
    else:
        rating = max(1, min(10, round(score(answer) / 4)))
    return f"The answer covers the question with some breadth. Rating: [[{rating}]]"


def score(answer: str) -> float:
    """Distinct words, times a factor of 0.75 to 1.25 from the answer's hash: deterministic, and the same
    wherever the answer appears in the prompt."""
    distinct = len(set(_WORD.findall(answer.lower())))
    noise = int.from_bytes(hashlib.sha256(answer.encode()).digest()[:8], "big") / 2**64
    return distinct * (0.75 + 0.5 * noise)


def _between(text: str, start: str, end: str) -> str | None:
    _, found, rest = text.partition(start)
    if not found:
        return None
    body, closed, _ = rest.partition(end)
    return body.strip() if closed else None
