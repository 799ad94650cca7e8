"""OpenAI Chat Completions wire models: lenient on input, with our `moa` extension in one block."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.failures import Failure, FailureKind

logger = logging.getLogger(__name__)

# Sampling parameters forwarded upstream (to the aggregator always, to proposers unless their model pins
# them). Anything else the client sends is accepted and ignored, with a debug log line.
FORWARDED_PARAMS = (
    "frequency_penalty",
    "max_completion_tokens",
    "max_tokens",
    "presence_penalty",
    "response_format",
    "seed",
    "stop",
    "temperature",
    "top_p",
    "user",
)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class MoaOptions(BaseModel):
    """Per-request options of moa-gateway (OpenAI SDK: `extra_body={"moa": {...}}`)."""

    model_config = ConfigDict(extra="forbid")

    include_proposals: bool = Field(
        default=False, description="Also return each proposer's answer text in the response's `moa.calls`"
    )
    layers: list[list[str]] | None = Field(
        default=None, description="Replace the pipeline's proposer layers: model aliases per layer"
    )
    aggregator: str | None = Field(default=None, description="Replace the pipeline's aggregator")


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=1, description="Only 1 is supported")
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False  # the OpenAI SDK sends null for stream=None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=0, description="Not supported yet")
    user: str | None = None

    # --- moa-gateway extension ---
    moa: MoaOptions = Field(default_factory=MoaOptions, description="moa-gateway per-request options")

    def sampling_params(self) -> dict[str, Any]:
        if self.model_extra:
            logger.debug("ignored request fields: %s", ", ".join(sorted(self.model_extra)))
        return {name: getattr(self, name) for name in FORWARDED_PARAMS if getattr(self, name) is not None}

    def message_dicts(self) -> list[dict[str, Any]]:
        return [m.model_dump(exclude_none=True) for m in self.messages]

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


def validation_failure(errors: Sequence[Any]) -> Failure:
    """The first problem of a pydantic validation, as a 400 with `param` set to its path."""
    if not errors:
        return Failure(FailureKind.INVALID_REQUEST, "Invalid request body")
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part != "body"]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return Failure(FailureKind.INVALID_REQUEST, f"{param}: {message}" if param else message, param=param)


def parse_chat_request(raw: bytes) -> ChatCompletionRequest:
    """A chat completion request from its body; raises Failure (400) naming what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Failure(FailureKind.INVALID_REQUEST, "The request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Failure(FailureKind.INVALID_REQUEST, "The request body must be a JSON object")
    try:  # what parses may still not encode again (orjson writes 255 levels, reads 1024)
        orjson.dumps(data)
    except orjson.JSONEncodeError as exc:
        raise Failure(
            FailureKind.INVALID_REQUEST, f"The request body cannot be forwarded upstream ({exc})"
        ) from None
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None
