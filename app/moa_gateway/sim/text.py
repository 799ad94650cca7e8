"""What a simulated model says: deterministic in (model, conversation, seed), visibly using references.

A proposer answers `[model] On '<question>': <words>`. A model sent MoA references (in the system
message, or in a message of their own: the aggregator, or a proposer of layer 2+) answers with a synthesis that quotes the start of
each reference, so tests and demos can see that every reference, whole, and the question reached it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from moa_gateway.core.tokens import message_text

_VOCABULARY = [
    "accuracy",
    "agents",
    "answer",
    "balance",
    "careful",
    "clear",
    "compare",
    "concise",
    "context",
    "detail",
    "evidence",
    "example",
    "factor",
    "focus",
    "general",
    "idea",
    "insight",
    "layer",
    "likely",
    "measure",
    "method",
    "model",
    "note",
    "option",
    "point",
    "practical",
    "precise",
    "question",
    "reason",
    "refine",
    "result",
    "review",
    "signal",
    "simple",
    "source",
    "step",
    "structure",
    "summary",
    "support",
    "test",
    "thought",
    "useful",
    "value",
    "verify",
    "view",
    "weigh",
]
# The heading of a MoA reference block on the wire, after the paper's reference code (DESIGN.md, section 1):
# the heading, then the answers numbered `\n1. `, `\n2. `. The simulator plays an upstream that only sees
# the wire, so it reads that format as documented rather than importing the core's prompt.
REFERENCES_HEADING = "Responses from models:"
_REFERENCE = re.compile(r"\n(\d+)\. ")
_ONE_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*")  # one token of moa_gateway.core.tokens, with its trailing space


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def question_of(messages: list[dict[str, Any]]) -> str:
    """The first words of the latest user turn."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return " ".join(message_text(message).split()[:8])
    return ""


def references_of(messages: list[dict[str, Any]]) -> list[str]:
    """The numbered answers after the MoA marker in the system message (the paper's place), or else in
    the last user message that carries them (`references: before_last_user`), if any."""
    first = messages[:1] if messages and messages[0].get("role") == "system" else []
    users = [m for m in reversed(messages) if m.get("role") == "user"]
    carrier = next((message_text(m) for m in [*first, *users] if REFERENCES_HEADING in message_text(m)), None)
    if carrier is None:
        return []
    tail = carrier.rsplit(REFERENCES_HEADING, 1)[1]
    parts = _REFERENCE.split(tail)  # ["", "1", text1, "2", text2, ...]
    return [parts[i].strip() for i in range(2, len(parts), 2)]


def answer_text(model: str, messages: list[dict[str, Any]], seed: int | None, length: int | None) -> str:
    conversation = "\x1e".join(f"{m.get('role')}:{message_text(m)}" for m in messages)
    digest = _digest(model, conversation, str(seed))
    question = question_of(messages)
    references = references_of(messages)
    sum_ = _ARITHMETIC.fullmatch(question.strip())
    if sum_ is not None:  # a canonical answer: every model agrees, as real ones do on `What is 2+3?`
        left, operator, right = int(sum_[1]), sum_[2], int(sum_[3])
        return str(left + right if operator == "+" else left - right if operator == "-" else left * right)
    count = length if length is not None else 16 + digest % 24
    words = [_VOCABULARY[((digest >> (i % 48)) ^ (i * 7)) % len(_VOCABULARY)] for i in range(count)]
    if references:
        quoted = " ".join(f"({i}) {_gist(ref)}" for i, ref in enumerate(references, 1))
        head = f"[{model}] Synthesis of {len(references)} responses on '{question}': {quoted} Overall:"
    else:
        head = f"[{model}] On '{question}':"
    return f"{head} {' '.join(words)}"


_ARITHMETIC = re.compile(r"what is (\d{1,9}) *([-+*]) *(\d{1,9})\?", re.IGNORECASE)


def _gist(reference: str) -> str:
    """`model: first words` of a simulated answer (its words follow the last colon), else its start."""
    tag = reference[1 : reference.index("]")] + ": " if reference.startswith("[") and "]" in reference else ""
    body = reference.rsplit(":", 1)[-1] if tag else reference
    return tag + " ".join(body.split()[:4])


def token_pieces(text: str, limit: int | None) -> list[str]:
    """Split into one-token pieces (each keeps its trailing space, the first any leading space, so a fixed
    `simulate.answer` comes back whole), at most `limit` of them."""
    pieces = _ONE_TOKEN.findall(text)
    lead = text[: len(text) - len(text.lstrip())]
    if lead:
        pieces = [lead + pieces[0], *pieces[1:]] if pieces else [lead]
    return pieces if limit is None else pieces[:limit]
