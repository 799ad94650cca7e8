"""What proposers see of an agent's conversation: text only, so any upstream accepts it.

The aggregator is the acting model (it gets the client's tools and the conversation as sent); proposers
advise. Their view renders assistant tool calls and tool results as text, drops non-text content for
models that take text only, and tells them, when tools are on offer, to advise instead of calling.
"""

from __future__ import annotations

from typing import Any

from moa_gateway.core.prompts import TOOL_RESULT_LABEL, with_instruction
from moa_gateway.core.types import Message

ADVISE_INSTRUCTION = (
    "The user's application can call tools; another model will decide whether to call one. You cannot "
    "call tools yourself: do not claim to have called one or invent its results. Advise instead: say "
    "what the next step should be (which tool to call with which arguments, or the answer if no tool "
    "is needed), using the tool calls and results shown in the conversation."
)
NON_TEXT_PLACEHOLDER = "[{kind} omitted: this model reads text only]"


def advisory_messages(messages: list[Message], *, tools_offered: bool, result_chars: int) -> list[Message]:
    """The proposers' view of `messages`: tool calls and results as text, each result cut to
    `result_chars` (head and tail kept); with tools on offer, the advise-only instruction added."""
    view = [_as_text(message, result_chars) for message in messages]
    return with_instruction(view, ADVISE_INSTRUCTION) if tools_offered else view


def text_only(messages: list[Message]) -> list[Message]:
    """`messages` with every non-text content part replaced by a short text placeholder."""
    return [_without_media(m) if isinstance(m.get("content"), list) else m for m in messages]


def cut_middle(text: str, limit: int) -> str:
    """`text` at most about `limit` characters: its head and tail, and how much was left out."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[… {len(text) - limit} characters omitted …]\n{text[len(text) - tail :]}"


def _as_text(message: Message, result_chars: int) -> Message:
    role = message.get("role")
    if role in ("tool", "function"):
        name = message.get("tool_call_id") or message.get("name") or "tool"  # `function` results have no id
        result = cut_middle(_content_text(message.get("content")), result_chars)
        return {"role": "user", "content": f"{TOOL_RESULT_LABEL}{name}]\n{result}"}
    calls = message.get("tool_calls") or (
        [{"function": message["function_call"]}] if message.get("function_call") else []
    )
    if role == "assistant" and calls:
        said = _content_text(message.get("content"))
        lines = [said] if said else []
        lines += [_call_line(call) for call in calls if isinstance(call, dict)]
        return {"role": "assistant", "content": "\n".join(lines)}
    return message


def _call_line(call: dict[str, Any]) -> str:
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    name = function.get("name", "?")
    arguments = function.get("arguments", "")
    ident = f" (id {call['id']})" if isinstance(call.get("id"), str) else ""
    return f"[Called tool {name}{ident} with arguments: {arguments}]"


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")
        )
    return str(content)


def _without_media(message: Message) -> Message:
    parts = []
    for part in message["content"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append(part)
        else:
            label = str(kind or "content").replace("_", " ")
            parts.append({"type": "text", "text": NON_TEXT_PLACEHOLDER.format(kind=label)})
    return {**message, "content": parts}
