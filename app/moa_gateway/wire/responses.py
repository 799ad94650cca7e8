"""OpenAI Responses API requests (`POST /v1/responses`), translated to a chat completion request: input
items to chat messages, flat function tools to chat's nested ones, `text.format` to `response_format`,
`reasoning.effort` to `reasoning_effort`. The MoA run itself is the chat service's."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.types import Message
from moa_gateway.wire.requests import ChatCompletionRequest, MoaOptions, json_object, validation_failure

logger = logging.getLogger(__name__)

# The tool types a chat model can be offered; any other is run by OpenAI itself (`web_search`, ...).
_SERVED_TOOLS = frozenset({"function", "namespace"})
_SUMMARIES = frozenset({"auto", "concise", "detailed"})  # `reasoning.summary`

# Fields of the Responses API that have no chat counterpart and change nothing here when sent.
_IGNORED = frozenset({"include", "truncation", "service_tier", "safety_identifier", "prompt_cache_key"})
# Fields we cannot honour: a 400 rather than an answer that silently is not what was asked.
_UNSUPPORTED = {
    "background": "background responses are not supported",
    "conversation": "conversations are not supported: pass `previous_response_id` or the whole history",
    "prompt": "stored prompt templates are not supported",
}


class ResponsesRequest(BaseModel):
    """`POST /v1/responses`, lenient on input like OpenAI's own: unknown fields are logged and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    store: bool | None = True
    stream: bool | None = False

    # --- moa-gateway extension ---
    moa: MoaOptions = Field(default_factory=MoaOptions, description="moa-gateway per-request options")

    @property
    def stores(self) -> bool:
        return self.store is not False  # OpenAI's default is to store


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    """A Responses request from its body; raises Failure (400) naming what is wrong."""
    try:
        request = ResponsesRequest.model_validate(json_object(raw))
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None
    extra = request.model_extra or {}
    for name, why in _UNSUPPORTED.items():
        if extra.get(name):
            raise Failure(FailureKind.INVALID_REQUEST, f"{name}: {why}", param=name)
    if request.moa.stream_events:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            "moa.stream_events: live events are served on /v1/chat/completions only",
            param="moa.stream_events",
        )
    if unknown := sorted(set(extra) - _IGNORED - set(_UNSUPPORTED)):
        logger.debug("responses request: ignoring fields %s", ", ".join(unknown))
    return request


def instructions_message(request: ResponsesRequest) -> list[Message]:
    """`instructions` as the conversation's system message (not carried to a continuation, as OpenAI)."""
    return [{"role": "system", "content": request.instructions}] if request.instructions else []


def input_messages(request: ResponsesRequest) -> list[Message]:
    """The request's `input` as chat messages: a string is one user turn; items map one by one, and
    consecutive `function_call` items join the assistant turn before them (parallel tool calls)."""
    if request.input is None:
        return []
    if isinstance(request.input, str):
        return [{"role": "user", "content": request.input}]
    messages: list[Message] = []
    joinable = False  # the last message is an assistant turn that a function_call item may join
    for index, item in enumerate(request.input):
        joinable = _add_item(messages, item, f"input[{index}]", joinable)
    return messages


def _add_item(messages: list[Message], item: dict[str, Any], where: str, joinable: bool) -> bool:
    """Appends what `item` says to `messages`; returns whether a function call may join the last."""
    kind = item.get("type", "message")
    if kind == "message":
        messages.append(_message(item, where))
        return bool(messages[-1]["role"] == "assistant")
    if kind == "function_call":
        call = {
            "id": _text_field(item, "call_id", where),
            "type": "function",
            "function": {
                "name": _text_field(item, "name", where),
                "arguments": _text_of(item, "arguments", where, default="{}") or "{}",
            },
        }
        if joinable:
            messages[-1].setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        return True
    if kind == "function_call_output":
        output = item.get("output")
        content = output if isinstance(output, str) else _joined_text(output, f"{where}.output")
        messages.append(
            {"role": "tool", "tool_call_id": _text_field(item, "call_id", where), "content": content}
        )
        return False
    if kind == "reasoning":
        return joinable  # a previous answer's reasoning: chat models take none back
    raise Failure(
        FailureKind.INVALID_REQUEST,
        f"{where}.type: input items of type {kind!r} are not supported (messages, function_call, "
        "function_call_output and reasoning are)",
        param=f"{where}.type",
    )


def _text_of(item: dict[str, Any], name: str, where: str, default: str | None = None) -> str:
    """`item[name]`, which must be a string (or absent or null, given a default)."""
    value = item.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise Failure(
            FailureKind.INVALID_REQUEST, f"{where}.{name}: a string is required", param=f"{where}.{name}"
        )
    return value


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    """`value`, which must be a list of objects: anything else is the client's 400, not our 500."""
    if not isinstance(value, list):
        raise Failure(FailureKind.INVALID_REQUEST, f"{where}: a list of objects is required", param=where)
    for index, element in enumerate(value):
        if not isinstance(element, dict):
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"{where}[{index}]: an object is required, not {type(element).__name__}",
                param=f"{where}[{index}]",
            )
    return value


def _text_field(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"{where}.{name}: a non-empty string is required",
            param=f"{where}.{name}",
        )
    return value


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"{where}.role: one of 'user', 'assistant', 'system', 'developer' is required",
            param=f"{where}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"{where}.content: a string or a list of parts",
            param=f"{where}.content",
        )
    if role != "user":  # system, developer and assistant turns are text for every upstream
        return {"role": role, "content": _joined_text(content, f"{where}.content")}
    parts = [
        _part(part, f"{where}.content[{i}]") for i, part in enumerate(_objects(content, f"{where}.content"))
    ]
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": role, "content": parts[0]["text"]}
    return {"role": role, "content": parts}


def _joined_text(parts: Any, where: str) -> str:
    if not isinstance(parts, list):
        raise Failure(FailureKind.INVALID_REQUEST, f"{where}: text or a list of text parts", param=where)
    texts = []
    for index, part in enumerate(_objects(parts, where)):
        if part.get("type") in ("input_text", "output_text", "text"):
            texts.append(_text_of(part, "text", f"{where}[{index}]"))
        elif part.get("type") == "refusal":
            texts.append(_text_of(part, "refusal", f"{where}[{index}]"))
    return "".join(texts)


def _part(part: dict[str, Any], where: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _text_of(part, "text", where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"{where}.image_url: an image URL or data URL is required (file ids are not supported)",
                param=f"{where}.image_url",
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        file = {k: part[k] for k in ("file_data", "file_id", "filename") if part.get(k)}
        return {"type": "file", "file": file}
    raise Failure(
        FailureKind.INVALID_REQUEST,
        f"{where}.type: content parts of type {kind!r} are not supported",
        param=f"{where}.type",
    )


def function_tools(request: ResponsesRequest) -> list[tuple[dict[str, Any], str | None]]:
    """The function tools offered, each with its namespace (a `namespace` tool groups functions; chat
    has no such grouping, so they reach the model flat, by name). A hosted tool is a 400 naming it."""
    found: list[tuple[dict[str, Any], str | None]] = []
    for index, tool in enumerate(request.tools or []):
        kind = tool.get("type")
        inner = _objects(tool.get("tools"), f"tools[{index}].tools") if kind == "namespace" else []
        if kind == "function":
            found.append((tool, None))
        elif kind == "namespace" and all(t.get("type") == "function" for t in inner):
            space = _text_field(tool, "name", f"tools[{index}]")
            found += [(function, space) for function in inner]
        else:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"tools[{index}]: the hosted tool {kind!r} is not supported: moa-gateway serves function "
                "tools only, which your code runs",
                param=f"tools[{index}].type",
            )
    # One pass with a set: a count per name made 30k tools a quadratic freeze of the event loop.
    seen: set[str] = set()
    twice: set[str] = set()
    for tool, _ in found:
        name = str(tool.get("name"))
        (twice if name in seen else seen).add(name)
    if twice:
        raise Failure(
            FailureKind.INVALID_REQUEST,
            f"tools: more than one function is named {min(twice)!r}",
            param="tools",
        )
    return found


def without_hosted_tools(request: ResponsesRequest) -> tuple[ResponsesRequest, list[str]]:
    """The request without the tools the gateway cannot offer a chat model (hosted ones: `web_search`,
    `file_search`, `code_interpreter`, ...), and their types; a `tool_choice` naming one goes too.
    Codex sends `web_search` by default: this answers without it rather than a 400 (MOA_HOSTED_TOOLS)."""
    tools = request.tools or []
    kept = [tool for tool in tools if not _hosted(tool)]
    if len(kept) == len(tools):
        return request, []
    dropped = [str(tool.get("type")) for tool in tools if _hosted(tool)]
    choice = request.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        listed = choice.get("tools")
        if isinstance(listed, list):
            served = [t for t in listed if not isinstance(t, dict) or not _hosted(t)]
            choice = {**choice, "tools": served}
    elif isinstance(choice, dict) and _hosted(choice):
        choice = None  # it forced a dropped tool: the model chooses among what is left
    return request.model_copy(update={"tools": kept or None, "tool_choice": choice}), dropped


def _hosted(tool: dict[str, Any]) -> bool:
    """A tool OpenAI runs itself (a type named and not one the gateway serves); a malformed type is
    left for the request's validation to refuse."""
    kind = tool.get("type")
    return isinstance(kind, str) and kind not in _SERVED_TOOLS


def wants_summary(request: ResponsesRequest) -> bool:
    """Whether `reasoning.summary` (or the older `generate_summary`) asks for reasoning summaries. The
    summary is the acting model's reasoning as it came: the gateway makes no second call to shorten it."""
    reasoning = request.reasoning or {}
    for name in ("summary", "generate_summary"):
        value = reasoning.get(name)
        if value is not None and value not in _SUMMARIES:
            raise Failure(
                FailureKind.INVALID_REQUEST,
                f"reasoning.{name}: one of 'auto', 'concise', 'detailed' (or null)",
                param=f"reasoning.{name}",
            )
        if value is not None:
            return True
    return False


def namespaces(request: ResponsesRequest) -> dict[str, str]:
    """The namespace of each namespaced function, by name, for the calls the model makes."""
    return {str(tool.get("name")): space for tool, space in function_tools(request) if space is not None}


def chat_tools(request: ResponsesRequest) -> list[dict[str, Any]] | None:
    """Responses' flat function tools as chat's nested ones."""
    if request.tools is None:
        return None
    keys = ("name", "description", "parameters", "strict")
    return [
        {"type": "function", "function": {k: tool[k] for k in keys if tool.get(k) is not None}}
        for tool, _ in function_tools(request)
    ]


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if choice is None or isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": _text_field(choice, "name", "tool_choice")}}
    if kind == "allowed_tools":
        tools = [
            {"type": "function", "function": {"name": _text_field(t, "name", f"tool_choice.tools[{i}]")}}
            if t.get("type") == "function"
            else t
            for i, t in enumerate(_objects(choice.get("tools"), "tool_choice.tools"))
        ]
        return {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": tools},
        }
    raise Failure(
        FailureKind.INVALID_REQUEST,
        f"tool_choice: the hosted tool {kind!r} is not supported: moa-gateway serves function tools only",
        param="tool_choice.type",
    )


def response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """`text.format` as chat's `response_format` (plain text needs none)."""
    spec = (text or {}).get("format")
    if not isinstance(spec, dict) or spec.get("type") in (None, "text"):
        return None
    if spec.get("type") == "json_schema":
        keys = ("name", "schema", "strict", "description")
        return {"type": "json_schema", "json_schema": {k: spec[k] for k in keys if k in spec}}
    return spec  # json_object, as chat names it


def chat_request(request: ResponsesRequest, messages: list[Message]) -> ChatCompletionRequest:
    """The chat completion that answers `request` over `messages` (instructions and history included).
    Only fields with a chat counterpart are set, so the acting model gets nothing Responses-only."""
    if not messages:
        raise Failure(FailureKind.INVALID_REQUEST, "input: the conversation is empty", param="input")
    body: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "stream": bool(request.stream),
        "moa": request.moa.model_dump(exclude_unset=True),
        "tools": chat_tools(request),
        "tool_choice": chat_tool_choice(request.tool_choice),
        "parallel_tool_calls": request.parallel_tool_calls,
        "max_completion_tokens": request.max_output_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "user": request.user,
        "response_format": response_format(request.text),
        "reasoning_effort": (request.reasoning or {}).get("effort"),
        "verbosity": (request.text or {}).get("verbosity"),
    }
    if request.top_logprobs:
        body |= {"logprobs": True, "top_logprobs": request.top_logprobs}
    try:
        return ChatCompletionRequest.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        raise validation_failure(exc.errors()) from None
