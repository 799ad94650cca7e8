"""Aggregation strategies beyond synthesis: `select` (the aggregator names the best proposal, returned
verbatim) and `sequential` (Self-MoA-Seq: references aggregated a window at a time, the running synthesis
carried into the next round)."""

from __future__ import annotations

import re

SELECT_PROMPT = (
    "You have been provided with a set of responses from various models to the latest user query. Your "
    "task is to choose the single best one: the most accurate, complete and helpful response to the "
    "instruction. Do not write a new response. Reply with only the number of the best response in double "
    "brackets, for example [[2]]."
    "\n\nResponses from models:"
)
_CHOICE = re.compile(r"\[\[\s*(\d+)\s*\]\]")


def selected(text: str, count: int) -> int | None:
    """The 0-based index the aggregator chose among `count` proposals, or None if it named none."""
    match = _CHOICE.search(text)
    if match is None:
        bare = text.strip().rstrip(".")
        if not bare.isdigit():
            return None
        number = int(bare)
    else:
        number = int(match.group(1))
    return number - 1 if 1 <= number <= count else None


def rounds(count: int, window: int) -> list[tuple[int, int]]:
    """The (start, end) of the references each sequential round takes: `window` in the first, then
    `window - 1` beside the running synthesis, until all are taken."""
    window = max(2, window)
    spans, start = [(0, min(window, count))], min(window, count)
    while start < count:
        end = min(start + window - 1, count)
        spans.append((start, end))
        start = end
    return spans
