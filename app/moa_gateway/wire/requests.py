"""OpenAI Chat Completions wire models: lenient on input, with our `moa` extension in one block."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from moa_gateway.core.failures import Failure, FailureKind

# What proposers get of the client's parameters (unless their model pins them): sampling only. The
# final call (aggregator or direct model) gets every field the client sent; see `final_params`.
PROPOSER_PARAMS = (
    "frequency_penalty",
    "max_completion_tokens",
    "max_tokens",
    "presence_penalty",
    "seed",
    "stop",
    "temperature",
    "top_p",
    "user",
)
# Ours, or set by the gateway itself for each upstream call.
_NOT_FORWARDED = frozenset({"model", "messages", "stream", "stream_options", "moa"})
_TOOL_FIELDS = frozenset({"tools", "tool_choice", "parallel_tool_calls"})


class ContentPart(BaseModel):
    """One part of a message's content; any type is forwarded, a text part must carry its text."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_parts_have_text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs its `text`, a string")
        return self


class FunctionCall(BaseModel):
    """A call the assistant made, sent back in the conversation (`tool_calls[].function`, or the legacy
    `function_call`). `arguments` is JSON text; an object, as some clients send it, is forwarded too."""

    model_config = ConfigDict(extra="allow")

    name: str
    arguments: str | dict[str, Any]


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    type: str = "function"  # not added when absent: messages are forwarded as sent (exclude_unset)
    function: FunctionCall | None = None

    @model_validator(mode="after")
    def _function_calls_name_one(self) -> ToolCall:
        if self.type == "function" and self.function is None:
            raise ValueError("a tool call of type function needs its `function` (name, arguments)")
        return self


class ChatMessage(BaseModel):
    """A message as sent, checked only where a wrong shape would otherwise reach the gateway's own code
    (the advisory view of a conversation reads tool calls and results) as something it cannot read."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = None
    tool_call_id: str | None = None


class FunctionSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    """A tool offered to the model: checked as OpenAI checks it, forwarded as sent."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)
    function: FunctionSpec | None = None

    @model_validator(mode="after")
    def _function_tools_name_one(self) -> ToolSpec:
        if self.type == "function" and self.function is None:
            raise ValueError("a tool of type function needs its `function` (name, parameters)")
        return self


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
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        description="Budget for this request, checked before any call (the pipeline's too)",
    )
    stream_events: bool = Field(
        default=False,
        description="With `stream: true`: also stream the run's layer and call events live, in "
        "`moa_events` on chunks without choices",
    )
    cache: bool = Field(
        default=True,
        description="false: neither read nor store this request's answer in the response cache "
        "(a pipeline's or model's `cache: {ttl_s}`); the response says `x-moa-cache: bypass`",
    )


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str = Field(min_length=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False  # the OpenAI SDK sends null for stream=None
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[ToolSpec] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None

    # --- moa-gateway extension ---
    moa: MoaOptions = Field(default_factory=MoaOptions, description="moa-gateway per-request options")

    def final_params(self) -> dict[str, Any]:
        """Every field the client sent, as sent, for the acting model: all but the model, the messages,
        what the gateway sets per call (`stream`, `stream_options`) and our `moa` block. Nulls are
        left out, as if not sent."""
        # Without tools, `tool_choice` and `parallel_tool_calls` mean nothing, and a strict upstream
        # (OpenAI's own) rejects them: clients such as LlamaIndex's `structured_predict` send them anyway.
        unused = _TOOL_FIELDS if not self.tools else frozenset()
        sent = self.model_dump(exclude_unset=True, exclude=set(_NOT_FORWARDED | unused))
        return {name: value for name, value in sent.items() if value is not None}

    def proposer_params(self) -> dict[str, Any]:
        """The sampling parameters the client sent, for proposers."""
        return {name: getattr(self, name) for name in PROPOSER_PARAMS if getattr(self, name) is not None}

    @property
    def tools_offered(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"

    @property
    def tools_forced(self) -> bool:
        """`tool_choice` makes a tool call compulsory: "required", or one named function."""
        return self.tools_offered and (self.tool_choice == "required" or isinstance(self.tool_choice, dict))

    def json_schema(self) -> dict[str, Any] | None:
        """The schema a `response_format` of type `json_schema` asks the answer to fit, if any."""
        spec = self.response_format or {}
        if spec.get("type") != "json_schema" or not isinstance(spec.get("json_schema"), dict):
            return None
        schema = spec["json_schema"].get("schema")
        return schema if isinstance(schema, dict) else None

    def message_dicts(self) -> list[dict[str, Any]]:
        """The messages as the client sent them (explicit nulls included: the acting model gets them verbatim)."""
        return [m.model_dump(exclude_unset=True) for m in self.messages]

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class EmbeddingsRequest(BaseModel):
    """`POST /v1/embeddings`: forwarded as sent (other fields included) to the model's provider."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]] = Field(description="Text(s) or token arrays")
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


def parse_embeddings_request(raw: bytes) -> EmbeddingsRequest:
    """An embeddings request from its body; raises Failure (400) naming what is wrong."""
    data = _json_object(raw)
    try:
        return EmbeddingsRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None


def validation_failure(errors: Sequence[Any]) -> Failure:
    """The first problem of a pydantic validation, as a 400 with `param` set to its path.

    A value that fits no member of a union (`content`: a string or a list of parts) gets an error per
    member: of the first field's errors, the deepest says most (a list's part that is wrong, rather
    than "not a string"). Pydantic's union member tags are left out of the path.
    """
    if not errors:
        return Failure(FailureKind.INVALID_REQUEST, "Invalid request body")
    paths = [_field_path(error.get("loc", ())) for error in errors]
    field = paths[0][:1]
    chosen = max((i for i, path in enumerate(paths) if path[:1] == field), key=lambda i: len(paths[i]))
    first, loc = errors[chosen], paths[chosen]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    message = message.partition(" or instance of ")[0]  # our class names mean nothing to a client
    return Failure(FailureKind.INVALID_REQUEST, f"{param}: {message}" if param else message, param=param)


# Pydantic's names for union members in an error's path: `str`, `list[ContentPart]`, `ToolCall`.
_UNION_TAG = re.compile(r"^(str|int|float|bool|none|bytes|[A-Z]\w*|.*[\[(,].*)$")


def _field_path(loc: Sequence[Any]) -> list[str | int]:
    return [p for p in loc if p != "body" and not (isinstance(p, str) and _UNION_TAG.match(p))]


def parse_chat_request(raw: bytes) -> ChatCompletionRequest:
    """A chat completion request from its body; raises Failure (400) naming what is wrong."""
    data = _json_object(raw)
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object that can be encoded again for an upstream; else a Failure (400)."""
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
    return data


json_object = _json_object  # the other wire requests (responses, completions) read their bodies the same way
