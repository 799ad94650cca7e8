"""Reference injection, exactly as the MoA paper's reference code does it (Wang et al. 2024, Table 1), or
just before the last user message so the prompt's prefix stays the same from call to call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

# `system`: the paper's, into the first system message. `before_last_user`: a message of its own just
# before the last user message, so everything before it is byte-identical from call to call and a
# provider's prefix cache keeps working.
Placement = Literal["system", "before_last_user"]
PLACEMENTS: tuple[Placement, ...] = ("system", "before_last_user")

DEFAULT_AGGREGATOR_PROMPT = (
    "You have been provided with a set of responses from various open-source models to the latest user "
    "query. Your task is to synthesize these responses into a single, high-quality response. It is "
    "crucial to critically evaluate the information provided in these responses, recognizing that some "
    "of it may be biased or incorrect. Your response should not simply replicate the given answers but "
    "should offer a refined, accurate, and comprehensive reply to the instruction. Ensure your response "
    "is well-structured, coherent, and adheres to the highest standards of accuracy and reliability."
    "\n\nResponses from models:"
)


# With `fanout: user_turn` the references were written once for the turn, before the tool calls and
# results that follow the last user message: the final call is told so, lest it repeat a call already
# answered. Said on every call of the pipeline (not only on reuse), so the block stays the same.
TURN_NOTE = (
    "The responses below were written for the latest user message, before any tool calls and tool "
    "results that follow it in the conversation. Where a tool call already has its result, use that "
    "result: do not call the tool again for it."
)


def references_block(prompt: str, references: list[str]) -> str:
    """The prompt followed by the answers numbered `\\n1. ...`, `\\n2. ...`."""
    return prompt + "".join(f"\n{i}. {ref}" for i, ref in enumerate(references, 1))


@dataclass(frozen=True)
class Injection:
    """How a references block goes in: where, and a note written before the prompt (say, that the
    references predate the tool results that follow them)."""

    placement: Placement = "system"
    note: str | None = None


PAPERS = Injection()  # into the system message, as the paper does
# How the proposers' view renders a tool result (as a user message: app/moa_gateway/core/advice.py);
# such a message is not the user's, so references never go before it.
TOOL_RESULT_LABEL = "[Result of tool call "


def inject_references(
    messages: list[dict[str, Any]], references: list[str], prompt: str, how: Injection = PAPERS
) -> list[dict[str, Any]]:
    """Put the references into the conversation; the client's messages are left as they are.

    `system` (the default): into the first system or `developer` message (see `with_instruction`).
    `before_last_user`: a message of its own just before the last user message (see `before_last_user`);
    in the proposers' view, a tool result rendered as a user message does not count as one.
    """
    if isinstance(references, str):  # a string would be numbered character by character
        raise TypeError("references must be a list of answers, not a string")
    block = references_block(prompt, references)
    if how.note:
        block = f"{how.note}\n\n{block}"
    if how.placement == "before_last_user":
        return before_last_user(messages, block)
    return with_instruction(messages, block)


def before_last_user(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """`text` as a `user` message of its own just before the last user message; without a user message,
    into the system message as `with_instruction` puts it. The input list and its dicts are not modified.

    Role `user`, not `system`: many chat templates and OpenAI-compatible servers accept a system message
    only first (Gemma's and Mistral's templates refuse one later; Anthropic's compatible API moves it),
    while two user messages in a row are accepted everywhere (merged where turns must alternate). And the
    references are other models' answers: as user text they do not get a system prompt's authority.
    """
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        content = message.get("content")
        rendered = isinstance(content, str) and content.startswith(TOOL_RESULT_LABEL)
        if message.get("role") == "user" and not rendered:
            return [*messages[:index], {"role": "user", "content": text}, *messages[index:]]
    return with_instruction(messages, text)


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
