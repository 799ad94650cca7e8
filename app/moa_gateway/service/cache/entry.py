"""A cached answer as bytes, and which answers are worth keeping: only a successful, complete run's,
with every call it made answered and nothing standing in for the pipeline's own answer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson

from moa_gateway.core.reports import AgreementReport, CacheHit
from moa_gateway.core.types import Answer, Choice, MoaResult, Usage

ENTRY_VERSION = 1
# A finished answer: the model stopped, hit the client's token limit, or called tools. Not
# `content_filter` or a provider's own reason, which another try may not repeat.
COMPLETE = frozenset({"stop", "length", "tool_calls", "function_call"})


def storable(result: MoaResult) -> bool:
    """Kept only when the run made calls and every one answered (no retry's fallback, no dropped
    proposer), the answer is the pipeline's own (not degraded), and every choice finished."""
    return (
        bool(result.calls)
        and all(call.status == "ok" for call in result.calls)
        and not result.dropped
        and result.degraded is None
        and all(choice.finish_reason in COMPLETE for choice in result.answer.choices())
    )


def encode(result: MoaResult, stored_at: float) -> bytes:
    """The answer's choices, what the run cost and how far its proposals agreed (a property of the
    answer, which every pipeline response reports), not its calls: a hit makes none."""
    usage = result.usage
    agreement = result.agreement
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "stored_at": stored_at,
            "pipeline": result.pipeline,
            "answered_by": result.answered_by,
            "cost_usd": result.cost_usd,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "choices": [_choice(choice) for choice in result.answer.choices()],
            # optional: an entry without it (or read by an older worker) is still an entry
            "agreement": None if agreement is None else asdict(agreement),
        }
    )


def decode(raw: bytes, now: float) -> MoaResult | None:
    """The cached answer as a run's result that made no call (usage and cost zero) and says what it
    saved; None for an entry this version cannot read."""
    try:
        data = orjson.loads(raw)
        if data.get("v") != ENTRY_VERSION:
            return None
        first, *more = (Choice(**choice) for choice in data["choices"])
        hit = CacheHit(
            saved_usd=float(data["cost_usd"]),
            saved_prompt_tokens=int(data["prompt_tokens"]),
            saved_completion_tokens=int(data["completion_tokens"]),
            age_s=max(0.0, now - float(data["stored_at"])),
        )
        agreed = data.get("agreement")
        agreement = None if agreed is None else AgreementReport(**agreed)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    answer = Answer(
        first.text,
        first.finish_reason,
        Usage(),
        reasoning=first.reasoning,
        tool_calls=first.tool_calls,
        logprobs=first.logprobs,
        more_choices=tuple(more),
    )
    return MoaResult(
        data["pipeline"],
        answer,
        [],
        answered_by=data["answered_by"],
        cache_hit=hit,
        agreement=agreement,
    )


def _choice(choice: Choice) -> dict[str, Any]:
    return {
        "text": choice.text,
        "finish_reason": choice.finish_reason,
        "reasoning": choice.reasoning,
        "tool_calls": choice.tool_calls,
        "logprobs": choice.logprobs,
    }
