"""Legacy Completions (`POST /v1/completions`) both ways: the prompt becomes a user message of a chat
completion; the answer goes back as `text_completion` choices (and chunks), legacy logprobs included."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.types import Delta, MoaResult
from moa_gateway.wire.chat import Completion, moa_body, usage_body
from moa_gateway.wire.requests import (
    ChatCompletionRequest,
    MoaOptions,
    StreamOptions,
    json_object,
    validation_failure,
)

# Passed on to the chat completion as they are: the two APIs name them alike.
_SHARED = (
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "logit_bias",
)


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    prompt: str | list[str] = Field(description="A prompt, or a list holding one prompt")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = False
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = None
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1)

    # --- moa-gateway extension ---
    moa: MoaOptions = Field(default_factory=MoaOptions, description="moa-gateway per-request options")

    @property
    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


def parse_completion_request(raw: bytes) -> CompletionRequest:
    """A legacy completion request; raises Failure (400) naming what is wrong or not supported."""
    try:
        request = CompletionRequest.model_validate(json_object(raw))
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None
    if isinstance(request.prompt, list) and len(request.prompt) != 1:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"prompt: one prompt per request (got {len(request.prompt)}); send each as its own request",
            param="prompt",
        )
    if request.suffix:
        raise Failure(FailureKind.INVALID_REQUEST, "suffix: insertion is not supported", param="suffix")
    if (request.best_of or 1) > 1:
        raise Failure(FailureKind.INVALID_REQUEST, "best_of: only 1 is supported (use `n`)", param="best_of")
    if request.moa.stream_events:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            "moa.stream_events: live events are served on /v1/chat/completions only",
            param="moa.stream_events",
        )
    return request


def check_echo(request: CompletionRequest, limit_bytes: int) -> None:
    """Refuse an `echo` whose answer would carry the prompt more than `limit_bytes` (the body limit) in
    all: each of the `n` choices repeats it, so a 2 MiB prompt with `n: 128` would build a 256 MiB answer
    from a 2 MiB request. Counted as the prompt's JSON text (what goes out), times `n`. Raises Failure."""
    if not request.echo:
        return
    copies = request.n or 1
    echoed = (len(orjson.dumps(request.prompt_text)) - 2) * copies  # without the quotes
    if echoed > limit_bytes:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"echo: the prompt echoed in {copies} choice(s) would be {echoed} bytes, over the limit of "
            f"{limit_bytes} bytes; ask for fewer choices, or echo a shorter prompt",
            param="echo",
        )


def chat_request(request: CompletionRequest) -> ChatCompletionRequest:
    """The chat completion that answers the prompt, as one user message."""
    sent = request.model_dump(exclude_unset=True)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": "user", "content": request.prompt_text}],
        "stream": bool(request.stream),
        "moa": request.moa.model_dump(exclude_unset=True),
        **{name: sent[name] for name in _SHARED if sent.get(name) is not None},
    }
    if request.stream_options is not None:
        body["stream_options"] = request.stream_options.model_dump()
    if request.logprobs is not None:
        body |= {"logprobs": True, "top_logprobs": request.logprobs}
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None


def new_completion(model: str) -> Completion:
    return Completion(model=model, id=f"cmpl-{uuid.uuid4().hex}")


def legacy_logprobs(chat_logprobs: Any, offset: int = 0) -> dict[str, Any] | None:
    """Chat logprobs (`{"content": [{token, logprob, top_logprobs}]}`) in the legacy shape."""
    content = chat_logprobs.get("content") if isinstance(chat_logprobs, dict) else None
    if not content:
        return None
    tokens, token_logprobs, top, offsets = [], [], [], []
    for entry in content:
        tokens.append(entry.get("token", ""))
        token_logprobs.append(entry.get("logprob"))
        top.append({t.get("token", ""): t.get("logprob") for t in entry.get("top_logprobs") or []})
        offsets.append(offset)
        offset += len(entry.get("token", ""))
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top, "text_offset": offsets}


def completion_body(completion: Completion, result: MoaResult, request: CompletionRequest) -> dict[str, Any]:
    prefix = request.prompt_text if request.echo else ""
    return {
        "id": completion.id,
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [
            {
                "text": prefix + choice.text,
                "index": index,
                "logprobs": legacy_logprobs(choice.logprobs, len(prefix)),
                "finish_reason": choice.finish_reason,
            }
            for index, choice in enumerate(result.answer.choices())
        ],
        "usage": usage_body(result.usage, result.cost_usd),
        # --- moa-gateway extension ---
        "moa": moa_body(result, request.moa.include_proposals),
    }


def chunk_body(
    completion: Completion, text: str, index: int, finish_reason: str | None, logprobs: Any = None
) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [{"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish_reason}],
    }


def delta_chunk(completion: Completion, delta: Delta, offset: int) -> dict[str, Any] | None:
    """A streamed piece of text as a chunk (reasoning and tool calls have no place in this API)."""
    if not delta.text:
        return None
    return chunk_body(completion, delta.text, delta.index, None, legacy_logprobs(delta.logprobs, offset))


def usage_chunk_body(completion: Completion, result: MoaResult, include_proposals: bool) -> dict[str, Any]:
    return {
        "id": completion.id,
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
        "choices": [],
        "usage": usage_body(result.usage, result.cost_usd),
        "moa": moa_body(result, include_proposals),
    }
