"""Chat Completions response bodies: `chat.completion`, its chunks, and the `moa` extension listing
every call."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moa_gateway.core.reports import (
    AgreementReport,
    BudgetReport,
    CacheHit,
    EarlyExitReport,
    GateReport,
    RankingReport,
)
from moa_gateway.core.types import CallRecord, Choice, Delta, MoaResult, Usage
from moa_gateway.wire.errors import call_error_code


@dataclass(frozen=True)
class Completion:
    """Identity shared by every chunk of one response."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))


def usage_body(usage: Usage, cost_usd: float) -> dict[str, Any]:
    """OpenAI's usage object, with `cost` in USD as OpenRouter adds it (the sum over every upstream call,
    the same figure as `moa.cost_usd`), so clients and proxies that read it need no extension."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    body["cost"] = round(cost_usd, 10)
    return body


def message_body(choice: Choice) -> dict[str, Any]:
    """An answer's choice as the assistant message: content (null beside tool calls when there is no
    text), the model's tool calls and reasoning as it sent them."""
    message: dict[str, Any] = {"role": "assistant", "content": choice.text}
    if choice.tool_calls:
        message["tool_calls"] = choice.tool_calls
        message["content"] = choice.text or None
    if choice.reasoning:
        message["reasoning_content"] = choice.reasoning
    return message


def coalesced(deltas: list[Delta]) -> list[Delta]:
    """Consecutive deltas of one choice and one kind (text, or reasoning) joined into one; tool-call
    and logprob pieces stay as they came."""
    out: list[Delta] = []
    for delta in deltas:
        last = out[-1] if out else None
        if (
            last is not None
            and last.index == delta.index
            and _plain(last)
            and _plain(delta)
            and bool(last.text) == bool(delta.text)
        ):
            out[-1] = Delta(last.text + delta.text, last.reasoning + delta.reasoning, index=delta.index)
        else:
            out.append(delta)
    return out


def _plain(delta: Delta) -> bool:
    """Text or reasoning only, not both."""
    return not delta.tool_calls and delta.logprobs is None and not (delta.text and delta.reasoning)


def delta_body(delta: Delta) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if delta.reasoning:
        body["reasoning_content"] = delta.reasoning
    if delta.text:
        body["content"] = delta.text
    if delta.tool_calls:
        body["tool_calls"] = delta.tool_calls
    return body


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
    if call.usage.cached_tokens:  # prompt tokens the provider read from its cache (priced as such)
        body["cached_tokens"] = call.usage.cached_tokens
    if call.error is not None:
        body["error"] = call.error
        body["error_code"] = None if call.failure is None else call_error_code(call.failure)
    if call.fallback_for is not None:
        body["fallback_for"] = call.fallback_for
    if call.tool_calls:
        body["tool_calls"] = call.tool_calls
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
    if result.pipeline is not None:  # null when fewer than two proposals answered: nothing to agree
        body["agreement"] = None if result.agreement is None else agreement_body(result.agreement)
    if result.references_reused:  # `fanout: user_turn`: the proposals are the turn's, no proposer called
        body["references_reused"] = True
    if result.degraded is not None:
        body["degraded"] = result.degraded.value
    if result.cache_hit is not None:
        body["cache"] = cache_hit_body(result.cache_hit)
    if result.early_exit is not None:
        body["early_exit"] = early_exit_body(result.early_exit)
    if result.budget is not None:
        body["budget"] = budget_body(result.budget)
    if result.rankings is not None:
        body["rankings"] = rankings_body(result.rankings)
    if result.gate is not None:
        body["gate"] = gate_body(result.gate)
    return body


def gate_body(report: GateReport) -> dict[str, Any]:
    """The gate's decision: whose answer it was, how confident, against what, and why."""
    return {
        "model": report.model,
        "method": report.method,
        "confidence": report.confidence,
        "threshold": report.threshold,
        "passed": report.passed,
        "audited": report.audited,
        "reason": report.reason,
    }


def early_exit_body(report: EarlyExitReport) -> dict[str, Any]:
    skipped = None if report.skipped is None else report.skipped.value
    return {
        "layer": report.layer,
        "agreement": report.agreement,
        "skipped": skipped,
        "escalated": report.escalated,
    }


def agreement_body(report: AgreementReport) -> dict[str, Any]:
    return {
        "score": report.score,
        "method": report.method,
        "layer": report.layer,
        "proposals": report.proposals,
        "dissent": report.dissent,
    }


def rankings_body(report: RankingReport) -> dict[str, Any]:
    """`aggregation: rank`: every proposal best first, with its points, and the rankings dropped."""
    return {
        "proposals": [
            {"proposal": p.proposal, "model": p.model, "points": p.points, "rank": p.rank}
            for p in report.proposals
        ],
        "reviewers": report.reviewers,
        "counted": report.counted,
        "dropped": [{"reviewer": d.reviewer, "reason": d.reason} for d in report.dropped],
        "then": report.then,
        "top_k": report.top_k,
    }


def cache_hit_body(hit: CacheHit) -> dict[str, Any]:
    """`moa.cache` of an answer replayed from the response cache: this request spent nothing (its
    `usage` and `cost_usd` are zeros); what the run that answered first spent is saved."""
    prompt, completion = hit.saved_prompt_tokens, hit.saved_completion_tokens
    return {
        "hit": True,
        "saved_usd": round(hit.saved_usd, 10),
        "saved_usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
        "age_s": round(hit.age_s, 3),
    }


def budget_body(report: BudgetReport) -> dict[str, Any]:
    return {
        "max_usd": report.max_usd,
        "estimated_usd": report.estimated_usd,
        "actions": report.actions,
        "actual_usd": report.actual_usd,
    }


def completion_body(completion: Completion, result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "index": index,
                "message": message_body(choice),
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason,
            }
            for index, choice in enumerate(result.answer.choices())
        ],
        "usage": usage_body(result.usage, result.cost_usd),
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
    completion: Completion,
    delta: dict[str, Any],
    finish_reason: str | None,
    include_usage: bool,
    index: int = 0,
    logprobs: Any = None,
) -> dict[str, Any]:
    body = _chunk(
        completion, [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]
    )
    if include_usage:  # OpenAI sends `usage: null` on every chunk but the last when usage is asked for
        body["usage"] = None
    return body


def usage_chunk_body(completion: Completion, result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    return {
        **_chunk(completion, []),
        "usage": usage_body(result.usage, result.cost_usd),
        "moa": moa_body(result, include_proposals),
    }


def call_body(call: CallRecord) -> dict[str, Any]:
    """One upstream call as `moa.calls` lists it, without a proposer's text."""
    return _call_body(call, include_text=False)
