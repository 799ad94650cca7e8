"""Reference injection, exactly as the MoA paper's reference code does it (Wang et al. 2024, Table 1)."""

from __future__ import annotations

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

    Appended after "\\n\\n" to the client's leading system message if there is one, otherwise a new
    system message goes first. The input list and its dicts are not modified.
    """
    if isinstance(references, str):  # a string would be numbered character by character
        raise TypeError("references must be a list of answers, not a string")
    block = references_block(prompt, references)
    if messages and messages[0].get("role") == "system":
        system = dict(messages[0])
        content = system.get("content")
        if isinstance(content, list):  # content parts: add ours as one more text part
            system["content"] = [*content, {"type": "text", "text": "\n\n" + block}]
        else:
            system["content"] = f"{content or ''}\n\n{block}"
        return [system, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]
