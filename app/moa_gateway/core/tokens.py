"""A dependency-free token estimate: words and punctuation marks.

Used for the simulator's (honest, by this measure) usage and for calls whose upstream reports no usage.
Real BPE tokenizers give roughly 0.75 words per token on English; this count is close enough for cost
estimates and is marked `estimated` wherever it stands in for a provider's own count.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def tokens_of(text: str) -> list[str]:
    """The tokens `count_tokens` counts (the simulator's prefix cache compares prompts by them)."""
    return _TOKEN.findall(text)


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Each message costs its role plus its text, as chat templates add a role marker per turn."""
    return sum(1 + count_tokens(message_text(m)) for m in messages)
