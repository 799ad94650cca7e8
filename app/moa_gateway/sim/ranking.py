"""The simulator as a reviewer (`aggregation: rank`): a reference block whose instruction asks to rank
the responses "from best to worst" gets a ranking, `[[2, 3, 1]]`, best first, deterministic in the
responses it is shown (the judge's score of each, app/moa_gateway/sim/judge.py), so the same responses
rank the same in any order. Steered by the request's (or the model's) `simulate` object: `prefer` (a
model tag: responses holding `[tag]` come first) and `ranking: "malformed"` (a reply with no ranking).
"""

from __future__ import annotations

from typing import Any

from moa_gateway.core.tokens import message_text
from moa_gateway.sim.judge import JudgeOptionError, score
from moa_gateway.sim.text import REFERENCES_HEADING, references_of

# The instruction of the gateway's ranking prompt as it appears on the wire (documented with `rank`).
RANKING_REQUEST = "rank them from best to worst"
MALFORMED = "malformed"


def ranking_text(messages: list[dict[str, Any]], options: Any) -> str | None:
    """A ranking of the references if the messages ask for one, else None (answer as usual)."""
    asked = any(
        REFERENCES_HEADING in text and RANKING_REQUEST in text.lower()
        for text in (message_text(m) for m in messages)
    )
    references = references_of(messages) if asked else []
    if not references:
        return None
    steer = options if isinstance(options, dict) else {}
    style = steer.get("ranking")
    if style is not None and style != MALFORMED:
        raise JudgeOptionError(f"'simulate.ranking' is {MALFORMED!r} (a reply with no ranking) or absent")
    if style == MALFORMED:
        return "Each response has its merits; I would rather not rank them."
    prefer = steer.get("prefer")
    tag = f"[{prefer}]" if isinstance(prefer, str) else None

    def worth(index: int) -> tuple[bool, float, int]:
        text = references[index]
        return (tag is not None and tag in text, score(text), -index)

    order = sorted(range(len(references)), key=worth, reverse=True)
    return "Ranking, best first: [[" + ", ".join(str(i + 1) for i in order) + "]]"
