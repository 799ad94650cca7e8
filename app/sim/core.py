"""Timed simulated completions in OpenAI's wire shape, shared by the in-process provider and the server.

Timing per request: `ttft_ms` before the first token, then `tokens_per_s` (0: instant). A request may
override the defaults with an extension object `"simulate": {"ttft_ms", "tokens_per_s",
"output_tokens", "fault", "fault_count", "fault_key", "retry_after_s"}`, which is how a config pins
per-model behaviour (`params: {simulate: {...}}`).

Faults: hang (never answers), error_500, error_503, rate_limit (429 with Retry-After), reset (the
connection drops mid-body or mid-stream), non_json (200 with an HTML body), empty_choices, trickle
(first token on time, then one token a second), malformed_usage (token counts -5, "abc", 1.5),
oversized_body (an answer of `oversize_bytes`, 17 MiB by default: over every default limit of the
gateway), truncated_stream (the stream stops after 3 tokens, with no finish_reason and no [DONE]; a
non-streamed body is cut in half), endless_trickle (a token every 200 ms forever; non-streamed: never
answers). With `fault_count: N` only the first N requests carrying the same `fault_key` fail, so
retries and recoveries can be exercised.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from app.core.tokens import count_prompt_tokens
from app.sim.text import answer_text, token_pieces

FAULTS = (
    "hang",
    "error_500",
    "error_503",
    "rate_limit",
    "reset",
    "non_json",
    "empty_choices",
    "trickle",
    "malformed_usage",
    "oversized_body",
    "truncated_stream",
    "endless_trickle",
)
_MALFORMED_USAGE = {"prompt_tokens": -5, "completion_tokens": "abc", "total_tokens": 1.5}
_TRUNCATE_AFTER = 3  # tokens
_ENDLESS_GAP_S = 0.2
_STATUS_FAULTS = {"error_500": 500, "error_503": 503, "rate_limit": 429}


class SimulatorRequestError(ValueError):
    """The request body is not a chat completion request."""


class SimulatedHTTPError(Exception):
    """Answer with this status and body instead of a completion."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], media_type: str) -> None:
        super().__init__(f"simulated HTTP {status}")
        self.status, self.body, self.headers, self.media_type = status, body, headers, media_type


class SimulatedReset(Exception):
    """Drop the connection; `partial` is the part of the body sent before."""

    def __init__(self, partial: bytes = b"") -> None:
        super().__init__("simulated connection reset")
        self.partial = partial


class SimulatedTruncation(Exception):
    """End the stream here: no finish_reason, no [DONE]."""


class SimulatedOversize(Exception):
    """Go on with `size` bytes of answer text: more than the gateway should take."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the answer is over the limit ({size} bytes)")
        self.size = size


class FaultCounter:
    """How many requests each `fault_key` has seen, for faults limited by `fault_count`."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next(self, key: str) -> int:
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return seen


@dataclass(frozen=True)
class SimProfile:
    ttft_ms: float = 150.0
    tokens_per_s: float = 200.0
    output_tokens: int | None = None
    fault: str | None = None
    fault_count: int | None = None
    fault_key: str = ""
    retry_after_s: float = 1.0
    oversize_bytes: int = 17 * 1024 * 1024

    def override(self, body: dict[str, Any]) -> SimProfile:
        options = body.get("simulate")
        if not isinstance(options, dict):
            return self
        fault = options.get("fault", self.fault)
        if fault is not None and fault not in FAULTS:
            raise SimulatorRequestError(f"'simulate.fault' is one of {', '.join(FAULTS)}")
        try:
            return replace(
                self,
                ttft_ms=max(0.0, float(options.get("ttft_ms", self.ttft_ms))),
                tokens_per_s=max(0.0, float(options.get("tokens_per_s", self.tokens_per_s))),
                output_tokens=_optional_int(options.get("output_tokens", self.output_tokens)),
                fault=fault,
                fault_count=_optional_int(options.get("fault_count", self.fault_count)),
                fault_key=str(options.get("fault_key", self.fault_key)),
                retry_after_s=max(0.0, float(options.get("retry_after_s", self.retry_after_s))),
                oversize_bytes=max(0, int(options.get("oversize_bytes", self.oversize_bytes))),
            )
        except (TypeError, ValueError):
            raise SimulatorRequestError(
                "'simulate' holds numbers: ttft_ms, tokens_per_s, output_tokens, oversize_bytes"
            ) from None

    def active_fault(self, counter: FaultCounter) -> str | None:
        if self.fault is None or self.fault_count is None:
            return self.fault
        return self.fault if counter.next(self.fault_key) < self.fault_count else None


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


async def _fail_before_answering(fault: str | None, profile: SimProfile) -> None:
    """The faults that strike before any byte of an answer."""
    if fault == "hang":
        await asyncio.sleep(3600)
    if fault in _STATUS_FAULTS:
        status = _STATUS_FAULTS[fault]
        body = orjson.dumps({"error": {"message": f"simulated {fault}", "type": "server_error"}})
        headers = {"retry-after": f"{profile.retry_after_s:g}"} if status == 429 else {}
        raise SimulatedHTTPError(status, body, headers, "application/json")
    if fault == "non_json":
        raise SimulatedHTTPError(200, b"<html><body>Upstream proxy error</body></html>", {}, "text/html")


async def _prepare(
    body: dict[str, Any], defaults: SimProfile, counter: FaultCounter | None
) -> tuple[SimProfile, _Reply, str | None]:
    """The request's profile, the reply to give, and the fault to play (after those that strike first)."""
    profile = defaults.override(body)
    reply = _reply(body, profile)
    fault = profile.active_fault(counter or FaultCounter())
    await _fail_before_answering(fault, profile)
    if fault == "trickle":
        profile = replace(profile, tokens_per_s=1.0)
    return profile, reply, fault


async def complete(
    body: dict[str, Any], defaults: SimProfile, counter: FaultCounter | None = None
) -> dict[str, Any]:
    profile, reply, fault = await _prepare(body, defaults, counter)
    if fault == "endless_trickle":  # a whole answer never comes
        await asyncio.sleep(3600)
    started = time.perf_counter()
    rate_s = len(reply.pieces) / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
    await _sleep_until(started + profile.ttft_ms / 1000 + rate_s)
    if fault == "oversized_body":
        raise SimulatedOversize(profile.oversize_bytes)
    if fault == "empty_choices":
        return {"id": f"chatcmpl-sim-{uuid.uuid4().hex}", "object": "chat.completion", "choices": []}
    completion = {
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
        "usage": _MALFORMED_USAGE if fault == "malformed_usage" else reply.usage,
    }
    if fault == "reset":
        whole = orjson.dumps(completion)
        raise SimulatedReset(whole[: len(whole) // 2])
    if fault == "truncated_stream":  # the body ends cleanly, but half-way through the JSON
        whole = orjson.dumps(completion)
        raise SimulatedHTTPError(200, whole[: len(whole) // 2], {}, "application/json")
    return completion


async def stream(
    body: dict[str, Any], defaults: SimProfile, counter: FaultCounter | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Chat completion chunks: role, one token each, finish; a usage chunk when asked for."""
    profile, reply, fault = await _prepare(body, defaults, counter)
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

    if fault == "empty_choices":
        await _sleep_until(first_token_at)
        yield {**base, "choices": []}
        return
    yield chunk({"role": "assistant", "content": ""})
    if fault == "endless_trickle":
        await _sleep_until(first_token_at)
        for i in itertools.count():
            yield chunk({"content": reply.pieces[i % len(reply.pieces)] if reply.pieces else "."})
            await asyncio.sleep(_ENDLESS_GAP_S)
    for i, piece in enumerate(reply.pieces):
        offset = i / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
        await _sleep_until(first_token_at + offset)
        if fault == "reset" and i == 3:
            raise SimulatedReset()
        if fault == "truncated_stream" and i == _TRUNCATE_AFTER:
            raise SimulatedTruncation()
        yield chunk({"content": piece})
    await _sleep_until(first_token_at)  # an empty answer still takes its time to first token
    if fault == "oversized_body":
        raise SimulatedOversize(profile.oversize_bytes)
    if fault == "truncated_stream":
        raise SimulatedTruncation()
    yield chunk({}, reply.finish_reason)
    options = body.get("stream_options")
    if fault == "malformed_usage":  # sent whether asked for or not
        yield {**base, "choices": [], "usage": _MALFORMED_USAGE}
    elif isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": reply.usage}
