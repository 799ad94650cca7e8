"""Do a layer's answers agree? Early exit (SMoA's "end debate", EMS's unbeatable majority) stops a run
when they do: more layers, or an aggregator, would only restate the agreed answer."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Match = Literal["normalized", "similarity"]
_PUNCTUATION_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)
# ASCII letters and digits kept, every other byte a space: for ASCII text, the same as NFKC, casefold and
# the regex above, at a fifth of the cost (the regex was 8% of a MoA request's instructions).
_ASCII_WORDS = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + b" " * 128


@dataclass(frozen=True)
class Agreement:
    share: float  # of the answers, the part that matches the most common one
    representative: int  # index of an answer of that majority (the first one)
    members: tuple[int, ...] = ()  # indexes of the answers that match the representative (it included)

    def dissent(self, count: int) -> list[int]:
        """The answers that stand apart: those not matching the most common answer, when that answer is
        shared (two or more match it). When every answer stands alone there is no majority to dissent
        from, and none is named."""
        if len(self.members) < 2:
            return []
        return [i for i in range(count) if i not in self.members]


def agreement(texts: list[str], match: Match = "normalized", similarity: float = 0.9) -> Agreement:
    """How far `texts` agree: `normalized` counts answers equal after case, whitespace and punctuation
    folding; `similarity` counts, for each answer, those whose token sets overlap it by at least
    `similarity` (Jaccard), and takes the best."""
    if not texts:
        return Agreement(0.0, 0)
    if match == "normalized":
        keys = [normalized(text) for text in texts]
        matches = [[j for j, other in enumerate(keys) if other == key] for key in keys]
    else:
        tokens = [set(normalized(text).split()) for text in texts]
        matches = [
            [j for j, other in enumerate(tokens) if jaccard(mine, other) >= similarity] for mine in tokens
        ]
    best = max(range(len(texts)), key=lambda i: (len(matches[i]), -i))
    return Agreement(len(matches[best]) / len(texts), best, tuple(matches[best]))


def normalized(text: str) -> str:
    if text.isascii():
        return b" ".join(text.encode().lower().translate(_ASCII_WORDS).split()).decode()
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCTUATION_OR_SPACE.sub(" ", folded).split())


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
