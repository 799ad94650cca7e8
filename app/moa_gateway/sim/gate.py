"""The simulator as a pipeline's gate model: how confident it says it is, and how much its samples agree.

A gate in `self_report` mode asks, in the system message, for a last line `Confidence: <a number from 0
to 1>`; the simulator recognises that wording on the wire (it does not import the gateway's prompt) and
ends its answer with `Confidence: x`: `simulate.confidence` (a number, or a string written as it is, to
play a malformed one), else a value from the question's hash, 0.40 to 0.99. `simulate.agreement: p`
makes repeated samples agree: each call, by a draw from its question and `seed`, gives the model's
shared answer (the one it gives without a seed) with probability p, else its seed's own; 1: every sample
agrees, 0: none.
"""

from __future__ import annotations

import hashlib
from typing import Any

from moa_gateway.core.tokens import message_text
from moa_gateway.sim.text import question_of

CONFIDENCE_ASKED = "`Confidence: <a number from 0 to 1>`"  # as a gate's instruction quotes it


def confidence_asked(messages: list[dict[str, Any]]) -> bool:
    """Does an instruction message ask for a trailing confidence line?"""
    return any(
        m.get("role") in ("system", "developer") and CONFIDENCE_ASKED in message_text(m) for m in messages
    )


def confidence_line(messages: list[dict[str, Any]], told: float | str | None) -> str:
    """The line that ends the answer: what `simulate.confidence` says, else the question's own."""
    if told is None:
        told = round(0.4 + 0.59 * _draw(question_of(messages), "confidence"), 2)
    return f"Confidence: {told}"


def agreeing_seed(messages: list[dict[str, Any]], seed: int | None, agreement: float | None) -> int | None:
    """The seed to write the answer with: none (the shared answer) when this call agrees, else its own."""
    if agreement is None:
        return seed
    return None if _draw(question_of(messages), "agree", str(seed or 0)) < agreement else seed


def _draw(*parts: str) -> float:
    """A number in [0, 1) fixed by `parts`."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big") / 2**64
