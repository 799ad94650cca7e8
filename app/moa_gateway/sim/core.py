"""Timed simulated completions in OpenAI's wire shape, shared by the in-process provider and the server.

Timing per request: `ttft_ms` before the first token, then `tokens_per_s` (0: instant). A request may
override the defaults with an extension object `"simulate": {"ttft_ms", "tokens_per_s",
"output_tokens", "fault", "fault_count", "fault_key", "retry_after_s", "reasoning", "think_tags",
"answer", "context_window", "tool_rounds", "agree", "ranking", "confidence", "agreement",
"judge_delay_ms"}`, which is how a config pins per-model behaviour (`params: {simulate: {...}}`).

As a pipeline's gate model (app/moa_gateway/sim/gate.py): asked for a confidence line, it ends its
answer with `Confidence: x` (`confidence`, else the question's own); `agreement: p` makes its own seeded
samples agree with probability p (`agree: p`, by contrast, makes different models give one common
answer). `judge_delay_ms` delays a judge's verdict (and nothing else, a reviewer's ranking included): a
slow judge.

`answer: "<text>"` fixes the text of choice 0 (other choices of `n` keep their own), in place of the
generated text and of a judge's verdict (`output_tokens` no longer applies): streamed a token per chunk,
counted in usage, cut by `max_tokens`, and dressed like any text (json_object wraps it as
`{"answer": ...}`, think_tags prefix it, a tool result's quote follows it). What replaces the text wins:
an offered tool still gets a tool call, json_schema still gets JSON fitting the schema, and reasoning
is still added. `context_window: N` (tokens) answers 400 `context_length_exceeded`, as OpenAI does, when
the prompt (count_prompt_tokens) plus `max_completion_tokens`/`max_tokens`, if given, exceeds N. Both
apply to chat completions only (embeddings ignore them). `tool_rounds: N` (default 1): with tools offered,
the model calls one until N rounds of tool results followed the last user message, then answers text.

Prompt caching (app/moa_gateway/sim/prefix_cache.py): `usage.prompt_tokens_details.cached_tokens` is the
longest prefix of the prompt this model was sent recently (from 1024 tokens, in blocks of 128), when the
caller passes a `PrefixCache` (the server and the in-process provider do).

Agent features (app/moa_gateway/sim/choices.py): offered `tools` get one tool call (the named `tool_choice`, else the
first tool; arguments fit its `parameters`; streamed as a head, then argument pieces), unless
`tool_choice` is "none" or the last message is a tool result (then text quoting it). `response_format`
json_schema gets JSON fitting the schema (app/moa_gateway/sim/schema.py), json_object `{"answer": <text>}`.
`reasoning_effort` or `simulate.reasoning` add `reasoning_content` (streamed first, counted in
`completion_tokens_details.reasoning_tokens`); `simulate.think_tags` starts the content with
`<think>...</think>`. `n` gives n choices; `logprobs`/`top_logprobs` give a logprob per content token.
`embed` answers `/v1/embeddings` (app/moa_gateway/sim/embeddings.py).

Faults: hang (never answers), error_500, error_503, rate_limit (429 with Retry-After), reset (the
connection drops mid-body or mid-stream), non_json (200 with an HTML body), empty_choices, trickle
(first token on time, then one token a second), malformed_usage (token counts -5, "abc", 1.5),
oversized_body (an answer of `oversize_bytes`, 17 MiB by default: over every default limit of the
gateway), truncated_stream (the stream stops after 3 tokens, with no finish_reason and no [DONE]; a
non-streamed body is cut in half), endless_trickle (a token every 200 ms forever; non-streamed: never
answers). With `fault_count: N` only the first N requests carrying the same `fault_key` fail, so
retries and recoveries can be exercised. One fault is in the answer, not the transport (ANSWER_FAULTS):
schema_invalid (a 200 whose content breaks `response_format`: `{}` for an object with required fields).

A question of the form `What is 12+30?` (+, - or *) gets the number alone, from every model: a canonical
answer that proposers agree on, as real models do (what early exit is for). `agree: p` (0 to 1) makes a
model give, with chance p, the common answer every agreeing model gives to the same conversation
(`[panel] On '<question>': ...`) instead of its own, drawn from the model, conversation and seed: models
at 1 always agree, at 0 (the default) never; so `moa.agreement` can be steered. A ranking request of
`aggregation: rank` gets a ranking (app/moa_gateway/sim/ranking.py; `ranking: "malformed"`: none).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from moa_gateway.core.tokens import count_prompt_tokens
from moa_gateway.sim import choices, embeddings
from moa_gateway.sim.gate import agreeing_seed, confidence_asked, confidence_line
from moa_gateway.sim.judge import JudgeOptionError, judge_text
from moa_gateway.sim.prefix_cache import PrefixCache
from moa_gateway.sim.profile import (
    ANSWER_FAULTS,
    FAULTS,
    FaultCounter,
    SimProfile,
    SimulatorRequestError,
)
from moa_gateway.sim.ranking import ranking_text
from moa_gateway.sim.text import answer_text

__all__ = [  # the profile's names too: the simulator's callers know them from here
    "ANSWER_FAULTS",
    "FAULTS",
    "FaultCounter",
    "SimProfile",
    "SimulatedHTTPError",
    "SimulatedOversize",
    "SimulatedReset",
    "SimulatedTruncation",
    "SimulatorRequestError",
    "complete",
    "embed",
    "stream",
]
_MALFORMED_USAGE = {"prompt_tokens": -5, "completion_tokens": "abc", "total_tokens": 1.5}
_TRUNCATE_AFTER = 3  # tokens
_ENDLESS_GAP_S = 0.2
_STATUS_FAULTS = {"error_500": 500, "error_503": 503, "rate_limit": 429}


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


@dataclass(frozen=True)
class _Reply:
    model: str
    choices: list[choices.Choice]
    prompt_tokens: int
    logprobs: bool  # every choice of every chunk carries a `logprobs` field
    cached_tokens: int = 0  # of prompt_tokens, read from the prefix cache
    judged: bool = False  # a judge's verdict

    @property
    def steps(self) -> int:
        """How many tokens the longest choice takes (choices are written side by side)."""
        return max(choice.steps for choice in self.choices)

    @property
    def usage(self) -> dict[str, Any]:
        completion = sum(choice.completion_tokens for choice in self.choices)
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        reasoning = sum(len(choice.reasoning) for choice in self.choices)
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage


def _reply(body: dict[str, Any], profile: SimProfile, break_schema: bool = False) -> _Reply:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        raise SimulatorRequestError("'model' is required")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise SimulatorRequestError("'messages' must be a non-empty list of objects")
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = int(limit) if isinstance(limit, int | float) and limit > 0 else None
    seed = body.get("seed") if isinstance(body.get("seed"), int) else None
    seed = agreeing_seed(messages, seed, profile.agreement)
    try:  # a judge prompt of `moa-gateway eval` gets a verdict (app/moa_gateway/sim/judge.py)
        verdict = judge_text(messages, body.get("simulate"))
        judged = verdict or ranking_text(messages, body.get("simulate"))
    except JudgeOptionError as exc:
        raise SimulatorRequestError(str(exc)) from None
    try:
        asked = choices.asked_of(
            body, reasoning=profile.reasoning, think_tags=profile.think_tags, tool_rounds=profile.tool_rounds
        )
    except choices.BadRequest as exc:
        raise SimulatorRequestError(str(exc)) from None
    if break_schema:
        asked = replace(asked, break_schema=True)
    prompt_tokens = count_prompt_tokens(messages)
    _check_context(profile.context_window, prompt_tokens + (limit or 0))
    made = []
    for index in range(asked.n):  # each choice is written with a seed of its own
        variant = choices.variant_seed(seed, index)
        if index == 0 and profile.answer is not None:
            text = profile.answer
        elif judged is not None:
            text = judged
        elif _agrees(model, messages, variant, profile.agree):
            text = answer_text(COMMON_ANSWER, messages, None, profile.output_tokens)
        else:
            text = answer_text(model, messages, variant, profile.output_tokens)
        if judged is None and confidence_asked(messages):  # a gate in self_report mode
            text = f"{text}\n{confidence_line(messages, profile.confidence)}"
        made.append(choices.build(index, text, asked, model=model, messages=messages, seed=seed, limit=limit))
    return _Reply(model, made, prompt_tokens, asked.logprobs, judged=verdict is not None)


COMMON_ANSWER = "panel"  # the tag of the answer agreeing models share


def _agrees(model: str, messages: list[dict[str, Any]], seed: int | None, chance: float) -> bool:
    """Whether the model gives the common answer (`simulate.agree`), drawn from what it was asked."""
    if chance <= 0:
        return False
    conversation = "\x1e".join(f"{m.get('role')}:{m.get('content')}" for m in messages)
    draw = hashlib.sha256(f"{model}\x1f{conversation}\x1f{seed}".encode()).digest()
    return int.from_bytes(draw[:8], "big") / 2**64 < chance


def _check_context(window: int | None, requested: int) -> None:
    """OpenAI's 400 when the request does not fit the model's context window."""
    if window is None or requested <= window:
        return
    error = {
        "message": (
            f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            f"{requested} tokens. Please reduce the length of the messages."
        ),
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    raise SimulatedHTTPError(400, orjson.dumps({"error": error}), {}, "application/json")


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
    body: dict[str, Any], defaults: SimProfile, counter: FaultCounter | None, cache: PrefixCache | None
) -> tuple[SimProfile, _Reply, str | None]:
    """The request's profile, the reply to give, and the fault to play (after those that strike first).
    A request that gets this far reads (and fills) the prefix cache."""
    profile = defaults.override(body)
    reply = _reply(body, profile)
    fault = profile.active_fault(counter or FaultCounter())
    await _fail_before_answering(fault, profile)
    if fault == "schema_invalid":
        reply = _reply(body, profile, break_schema=True)
    if cache is not None:
        reply = replace(reply, cached_tokens=cache.read(reply.model, body["messages"]))
    if fault == "trickle":
        profile = replace(profile, tokens_per_s=1.0)
    if reply.judged and profile.judge_delay_ms:
        profile = replace(profile, ttft_ms=profile.ttft_ms + profile.judge_delay_ms)
    return profile, reply, fault


async def complete(
    body: dict[str, Any],
    defaults: SimProfile,
    counter: FaultCounter | None = None,
    cache: PrefixCache | None = None,
) -> dict[str, Any]:
    profile, reply, fault = await _prepare(body, defaults, counter, cache)
    if fault == "endless_trickle":  # a whole answer never comes
        await asyncio.sleep(3600)
    started = time.perf_counter()
    rate_s = reply.steps / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
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
        "choices": [choice.body() for choice in reply.choices],
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
    body: dict[str, Any],
    defaults: SimProfile,
    counter: FaultCounter | None = None,
    cache: PrefixCache | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Chat completion chunks: role, one token each, finish; a usage chunk when asked for. With `n` > 1
    the choices' chunks alternate, each with its `index`."""
    profile, reply, fault = await _prepare(body, defaults, counter, cache)
    started = time.perf_counter()
    first_token_at = started + profile.ttft_ms / 1000
    base = {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": reply.model,
    }
    chunk = functools.partial(choices.stream_chunk, base, reply.logprobs)
    if fault == "empty_choices":
        await _sleep_until(first_token_at)
        yield {**base, "choices": []}
        return
    for choice in reply.choices:
        yield chunk(choice.role_delta(), index=choice.index)
    if fault == "endless_trickle":
        await _sleep_until(first_token_at)
        pieces = reply.choices[0].pieces
        for i in itertools.count():
            yield chunk({"content": pieces[i % len(pieces)] if pieces else "."})
            await asyncio.sleep(_ENDLESS_GAP_S)
    steps = [choice.deltas() for choice in reply.choices]
    for i in range(reply.steps):
        offset = i / profile.tokens_per_s if profile.tokens_per_s > 0 else 0.0
        await _sleep_until(first_token_at + offset)
        if fault == "reset" and i == 3:
            raise SimulatedReset()
        if fault == "truncated_stream" and i == _TRUNCATE_AFTER:
            raise SimulatedTruncation()
        for choice, deltas in zip(reply.choices, steps, strict=True):
            if i < len(deltas):
                yield chunk(deltas[i][0], index=choice.index, logprob=deltas[i][1])
    await _sleep_until(first_token_at)  # an empty answer still takes its time to first token
    if fault == "oversized_body":
        raise SimulatedOversize(profile.oversize_bytes)
    if fault == "truncated_stream":
        raise SimulatedTruncation()
    for choice in reply.choices:
        yield chunk({}, choice.finish_reason, index=choice.index)
    options = body.get("stream_options")
    if fault == "malformed_usage":  # sent whether asked for or not
        yield {**base, "choices": [], "usage": _MALFORMED_USAGE}
    elif isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": reply.usage}


async def embed(
    body: dict[str, Any], defaults: SimProfile, counter: FaultCounter | None = None
) -> dict[str, Any]:
    """An embeddings response (app/moa_gateway/sim/embeddings.py), after `ttft_ms`. The faults of one JSON answer
    apply: hang and endless_trickle (no answer), the status faults, non_json, reset, truncated_stream
    (half a body), empty_choices (`data: []`), malformed_usage, oversized_body; the others are ignored."""
    profile = defaults.override(body)
    try:
        response = embeddings.embeddings_body(body)
    except choices.BadRequest as exc:
        raise SimulatorRequestError(str(exc)) from None
    fault = profile.active_fault(counter or FaultCounter())
    await _fail_before_answering(fault, profile)
    if fault == "endless_trickle":
        await asyncio.sleep(3600)
    await asyncio.sleep(profile.ttft_ms / 1000)
    if fault == "oversized_body":
        raise SimulatedOversize(profile.oversize_bytes)
    if fault == "empty_choices":
        response["data"] = []
    if fault == "malformed_usage":
        response["usage"] = _MALFORMED_USAGE
    if fault in ("reset", "truncated_stream"):
        whole = orjson.dumps(response)
        if fault == "reset":
            raise SimulatedReset(whole[: len(whole) // 2])
        raise SimulatedHTTPError(200, whole[: len(whole) // 2], {}, "application/json")
    return response
