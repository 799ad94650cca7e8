"""Reference injection, exactly as the MoA paper's reference code does it (Wang et al. 2024, Table 1)."""

from __future__ import annotations

import re
from typing import Any

DEFAULT_AGGREGATOR_PROMPT = (
    "You have been provided with a set of responses from various open-source models to the latest user "
    "query. Your task is to synthesize these responses into a single, high-quality response. It is "
    "crucial to critically evaluate the information provided in these responses, recognizing that some "
    "of it may be biased or incorrect. Your response should not simply replicate the given answers but "
    "should offer a refined, accurate, and comprehensive reply to the instruction. Ensure your response "
    "is well-structured, coherent, and adheres to the highest standards of accuracy and reliability."
    "\n\nResponses from models:"
)


def references_block(prompt: str, references: list[str]) -> str:
    """The prompt followed by the answers numbered `\\n1. ...`, `\\n2. ...`."""
    return prompt + "".join(f"\n{i}. {ref}" for i, ref in enumerate(references, 1))


def inject_references(
    messages: list[dict[str, Any]], references: list[str], prompt: str
) -> list[dict[str, Any]]:
    """Put the references into the system message; the client's turns are left as they are.

    The block goes into the first system or `developer` message (see `with_instruction`).
    """
    if isinstance(references, str):  # a string would be numbered character by character
        raise TypeError("references must be a list of answers, not a string")
    return with_instruction(messages, references_block(prompt, references))


def with_instruction(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """`text` appended to the first system (or `developer`) message, after a blank line; without one, a new
    system message goes first. The input list and its dicts are not modified."""
    for index, message in enumerate(messages):
        if message.get("role") in _INSTRUCTION_ROLES:
            system = dict(message)
            content = system.get("content")
            if isinstance(content, list):  # content parts: add ours as one more text part
                system["content"] = [*content, {"type": "text", "text": "\n\n" + text}]
            else:
                system["content"] = f"{content or ''}\n\n{text}"
            return [*messages[:index], system, *messages[index + 1 :]]
    return [{"role": "system", "content": text}, *messages]


_INSTRUCTION_ROLES = ("system", "developer")
_THINKING = re.compile(r"<(think|thinking|reasoning)>.*?(</\1>|\Z)", re.DOTALL | re.IGNORECASE)


def final_answer(text: str) -> str:
    """A proposal as a reference: its `<think>…</think>`-style blocks removed (an unclosed one runs to
    the end), so the aggregator sees answers, not another model's reasoning."""
    if "<" not in text:
        return text
    return _THINKING.sub("", text).strip()
