"""Timed simulated completions in OpenAI's wire shape, shared by the in-process provider and the server.

Timing per request: `ttft_ms` before the first token, then `tokens_per_s` (0: instant). A request may
override the defaults with an extension object `"simulate": {"ttft_ms", "tokens_per_s",
"output_tokens"}`, which is how a config pins per-model behaviour (`params: {simulate: {...}}`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from app.tokens import count_prompt_tokens
from app.upstream.simulator.text import answer_text, token_pieces


class SimulatorRequestError(ValueError):
    """The request body is not a chat completion request."""


@dataclass(frozen=True)
class SimProfile:
    ttft_ms: float = 150.0
    tokens_per_s: float = 200.0
    output_tokens: int | None = None

    def override(self, body: dict[str, Any]) -> SimProfile:
        options = body.get("simulate")
        if not isinstance(options, dict):
            return self
        try:
            return replace(
                self,
                ttft_ms=max(0.0, float(options.get("ttft_ms", self.ttft_ms))),
                tokens_per_s=max(0.0, float(options.get("tokens_per_s", self.tokens_per_s))),
                output_tokens=_optional_int(options.get("output_tokens", self.output_tokens)),
            )
        except (TypeError, ValueError):
            raise SimulatorRequestError(
                "'simulate' holds numbers: ttft_ms, tokens_per_s, output_tokens"
            ) from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else max(0, int(value))


@dataclass(frozen=True)
class _Reply:
    model: str
    pieces: list[str]
    finish_reason: str
    prompt_tokens: int

    @property
    def usage(self) -> dict[str, int]:
        completion = len(self.pieces)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def _reply(body: dict[str, Any], profile: SimProfile) -> _Reply:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise SimulatorRequestError("'model' is required")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise SimulatorRequestError("'messages' must be a non-empty list of objects")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = int(limit) if isinstance(limit, int | float) and limit > 0 else None
    seed = body.get("seed") if isinstance(body.get("seed"), int) else None
    text = answer_text(model, messages, seed, profile.output_tokens)
    pieces = token_pieces(text, None)
    truncated = limit is not None and len(pieces) > limit
    if truncated:
        pieces = pieces[:limit]
        pieces[-1] = pieces[-1].rstrip()
    return _Reply(model, pieces, "length" if truncated else "stop", count_prompt_tokens(messages))


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def complete(body: dict[str, Any], defaults: SimProfile) -> dict[str, Any]:
    profile = defaults.override(body)
    reply = _reply(body, profile)
    started = time.perf_counter()
    rate_s = len(reply.pieces) / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
    await _sleep_until(started + profile.ttft_ms / 1000 + rate_s)
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(reply.pieces)},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": reply.usage,
    }


async def stream(body: dict[str, Any], defaults: SimProfile) -> AsyncIterator[dict[str, Any]]:
    """Chat completion chunks: role, one token each, finish; a usage chunk when asked for."""
    profile = defaults.override(body)
    reply = _reply(body, profile)
    started = time.perf_counter()
    first_token_at = started + profile.ttft_ms / 1000
    base = {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    yield chunk({"role": "assistant", "content": ""})
    for i, piece in enumerate(reply.pieces):
        offset = i / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
        await _sleep_until(first_token_at + offset)
        yield chunk({"content": piece})
    await _sleep_until(first_token_at)  # an empty answer still takes its time to first token
    yield chunk({}, reply.finish_reason)
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": reply.usage}
