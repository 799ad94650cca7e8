"""Responses API output: the `response` object and its `output` items (reasoning, message, function
calls), built from a chat answer; and the assistant turn that answer adds to a stored conversation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from moa_gateway.core.types import Answer, Message, MoaResult, Usage
from moa_gateway.wire.chat import moa_body
from moa_gateway.wire.responses import ResponsesRequest, namespaces, wants_summary

ItemKind = Literal["reasoning", "message", "function_call"]
Status = Literal["in_progress", "completed", "incomplete", "failed"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def item_id(prefix: str, response_id: str) -> str:
    """An output item's id, which starts with its response's: an `item_reference` to it is found with
    one store lookup, with no index to keep beside the store (or to expire and evict with it)."""
    return f"{prefix}_{response_id.removeprefix('resp_')}{uuid.uuid4().hex[:16]}"


def response_id_of(item: str) -> str | None:
    """The id of the response an output item of ours belongs to, from the item's id (see item_id)."""
    _, _, rest = item.partition("_")
    head = rest[:32]
    if len(rest) <= 32 or len(head) != 32 or any(c not in "0123456789abcdef" for c in head):
        return None
    return f"resp_{head}"


@dataclass(frozen=True)
class ResponseFrame:
    """Identity and echoed request fields of one response, the same in every event of its stream."""

    id: str
    model: str
    echo: dict[str, Any]
    include_proposals: bool = False
    namespaces: dict[str, str] = field(default_factory=dict)  # namespaced function name -> namespace
    dropped_tools: tuple[str, ...] = ()  # types of the hosted tools left out (MOA_HOSTED_TOOLS=drop)
    summary: bool = False  # `reasoning.summary` was asked: reasoning items carry it as `summary` too
    created_at: int = field(default_factory=lambda: int(time.time()))

    @classmethod
    def of(cls, request: ResponsesRequest, dropped_tools: tuple[str, ...] = ()) -> ResponseFrame:
        echo = {
            "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens,
            "metadata": request.metadata or {},
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": None, "summary": None, **(request.reasoning or {})},
            "store": request.stores,
            "temperature": request.temperature,
            "text": request.text or {"format": {"type": "text"}},
            "tool_choice": request.tool_choice or "auto",
            "tools": request.tools or [],
            "top_logprobs": request.top_logprobs,
            "top_p": request.top_p,
            "truncation": "disabled",
            "user": request.user,
        }
        return cls(
            new_id("resp"),
            request.model,
            echo,
            request.moa.include_proposals,
            namespaces(request),
            dropped_tools,
            wants_summary(request),
        )


@dataclass
class OutputItem:
    """One output item: `text` is the message text, the reasoning text, or a call's arguments."""

    kind: ItemKind
    id: str
    text: str = ""
    name: str = ""  # function calls
    call_id: str = ""  # function calls: the model's tool call id, which the client answers
    namespace: str | None = None  # function calls of a function offered in a `namespace` tool
    logprobs: list[dict[str, Any]] = field(default_factory=list)  # message text


def item_body(item: OutputItem, status: Status, summary: bool = False) -> dict[str, Any]:
    """An output item as the client sees it; with `summary`, reasoning is in `summary` as well as in
    `content` (the AI SDK and Codex read the summary, others the reasoning text)."""
    if item.kind == "reasoning":
        content = [{"type": "reasoning_text", "text": item.text}] if item.text else []
        summaries = [summary_part(item.text)] if summary and item.text else []
        return {
            "id": item.id,
            "type": "reasoning",
            "summary": summaries,
            "content": content,
            "status": status,
        }
    if item.kind == "function_call":
        body = {
            "id": item.id,
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.text,
            "status": status,
        }
        return body if item.namespace is None else body | {"namespace": item.namespace}
    parts = [] if status == "in_progress" and not item.text else [text_part(item.text, item.logprobs)]
    return {"id": item.id, "type": "message", "role": "assistant", "status": status, "content": parts}


def summary_part(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}


def text_part(text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def output_items(answer: Answer, frame: ResponseFrame) -> list[OutputItem]:
    """An answer's first choice as output items: reasoning, then the message, then each tool call."""
    items = []
    if answer.reasoning:
        items.append(OutputItem("reasoning", item_id("rs", frame.id), answer.reasoning))
    if answer.text or not answer.tool_calls:
        logprobs = answer.logprobs.get("content") if isinstance(answer.logprobs, dict) else None
        items.append(OutputItem("message", item_id("msg", frame.id), answer.text, logprobs=logprobs or []))
    for call in answer.tool_calls or []:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        items.append(
            OutputItem(
                "function_call",
                item_id("fc", frame.id),
                str(function.get("arguments") or ""),
                name=name,
                call_id=str(call.get("id") or new_id("call")),
                namespace=frame.namespaces.get(name),
            )
        )
    return items


def usage_body(usage: Usage, cost_usd: float) -> dict[str, Any]:
    """The Responses API's usage object, with `cost` in USD as OpenRouter adds it (= `moa.cost_usd`)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
        "cost": round(cost_usd, 10),
    }


_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def final_status(answer: Answer) -> Status:
    return "incomplete" if answer.finish_reason in _INCOMPLETE_REASONS else "completed"


def response_body(
    frame: ResponseFrame,
    status: Status,
    items: list[OutputItem],
    result: MoaResult | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object; with `result`, finished (usage, the `moa` extension)."""
    item_status: Status = "completed" if status == "completed" else status
    output = [item_body(item, item_status, frame.summary) for item in items]
    body: dict[str, Any] = {
        "id": frame.id,
        "object": "response",
        "created_at": frame.created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": None,
        "model": frame.model,
        "output": output,
        "output_text": "".join(i.text for i in items if i.kind == "message"),
        **frame.echo,
        "usage": None,
    }
    if result is not None:
        reason = _INCOMPLETE_REASONS.get(result.answer.finish_reason)
        if reason is not None:
            body["incomplete_details"] = {"reason": reason}
        body["usage"] = usage_body(result.usage, result.cost_usd)
        # --- moa-gateway extension ---
        body["moa"] = moa_body(result, frame.include_proposals)
        if frame.dropped_tools:  # said in the answer, as the client asked for tools it did not get
            body["moa"]["dropped_tools"] = list(frame.dropped_tools)
    return body


def assistant_turn(items: list[OutputItem]) -> Message:
    """The output as the assistant message a continuation (`previous_response_id`) replays: its text
    and tool calls, with the call ids the client answers in `function_call_output` items."""
    text = "".join(i.text for i in items if i.kind == "message")
    calls = [
        {"id": i.call_id, "type": "function", "function": {"name": i.name, "arguments": i.text}}
        for i in items
        if i.kind == "function_call"
    ]
    if not calls:
        return {"role": "assistant", "content": text}
    return {"role": "assistant", "content": text or None, "tool_calls": calls}
