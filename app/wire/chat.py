"""Chat Completions response bodies: `chat.completion`, its chunks, and the `moa` extension listing
every call."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.core.types import CallRecord, MoaResult, Usage
from app.wire.errors import call_error_code


@dataclass(frozen=True)
class Completion:
    """Identity shared by every chunk of one response."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def cost_header(result: MoaResult) -> str:
    return f"{round(result.cost_usd, 10):.10f}"


def _call_body(call: CallRecord, include_text: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "layer": call.layer,
        "role": call.role,
        "model": call.model,
        "status": call.status,
        "latency_ms": round(call.latency_s * 1000, 2),
        "ttft_ms": None if call.ttft_s is None else round(call.ttft_s * 1000, 2),
        "prompt_tokens": call.usage.prompt_tokens,
        "completion_tokens": call.usage.completion_tokens,
        "usage_estimated": call.usage.estimated,
        "cost_usd": round(call.cost_usd, 10),
    }
    if call.error is not None:
        body["error"] = call.error
        body["error_code"] = None if call.failure is None else call_error_code(call.failure)
    if call.fallback_for is not None:
        body["fallback_for"] = call.fallback_for
    if include_text and call.role == "proposer" and call.text is not None:
        body["text"] = call.text
    return body


def moa_body(result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pipeline": result.pipeline,
        "answered_by": result.answered_by,
        "cost_usd": round(result.cost_usd, 10),
        "dropped": result.dropped,
        "calls": [_call_body(call, include_proposals) for call in result.calls],
    }
    if result.degraded is not None:
        body["degraded"] = result.degraded
    return body


def completion_body(completion: Completion, result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": usage_body(result.usage),
        # --- moa-gateway extension ---
        "moa": moa_body(result, include_proposals),
    }


def _chunk(completion: Completion, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
        "choices": choices,
    }


def chunk_body(
    completion: Completion, delta: dict[str, Any], finish_reason: str | None, include_usage: bool
) -> dict[str, Any]:
    body = _chunk(
        completion, [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    if include_usage:  # OpenAI sends `usage: null` on every chunk but the last when usage is asked for
        body["usage"] = None
    return body


def usage_chunk_body(completion: Completion, result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    return {
        **_chunk(completion, []),
        "usage": usage_body(result.usage),
        "moa": moa_body(result, include_proposals),
    }
