"""What an upstream answer must hold, checked field by field: the choices of a completion, the deltas
of a stream, the token usage. Anything else fails that one call as a `bad_response`."""

from __future__ import annotations

import uuid
from typing import Any

from moa_gateway.core.failures import Failure
from moa_gateway.core.types import Choice, Delta, Usage
from moa_gateway.upstream.failures import upstream_error

# No call uses 4 billion tokens; and counts summed over a request must stay within JSON's 64-bit ints.
MAX_TOKEN_COUNT = 2**32
MAX_CHOICES = 128  # OpenAI's limit on `n`


def malformed(alias: str, what: str) -> Failure:
    return upstream_error(f"model {alias}: malformed response ({what})", model=alias)


def completion_choices(alias: str, payload: dict[str, Any]) -> list[Choice]:
    """Every choice of a `chat.completion`, in index order: text, finish reason, reasoning, tool calls
    and logprobs (the last two as sent; a legacy `function_call` as a tool call)."""
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise malformed(alias, "choices is not a non-empty list")
    found: dict[int, Choice] = {}
    for position, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise malformed(alias, f"no choices[{position}].message")
        found[_index(alias, choice, position)] = Choice(
            _text(alias, "message.content", message.get("content")),
            _finish_reason(alias, choice) or "stop",
            _reasoning(alias, message) or None,
            _tool_calls(alias, "message.tool_calls", message.get("tool_calls"))
            or _legacy_call(alias, message.get("function_call")),
            choice.get("logprobs"),
        )
    return [found[index] for index in sorted(found)]


class _Assembly:
    """One choice of a stream, put together from its deltas."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.logprobs: list[Any] = []
        self.finish_reason = "stop"
        self.legacy_call_id: str | None = None  # the id given to a streamed legacy `function_call`

    def add_tool_calls(self, pieces: list[dict[str, Any]]) -> None:
        """Tool-call deltas merged the way OpenAI's SDK does: by `index`, arguments concatenated."""
        for piece in pieces:
            call = self.tool_calls.setdefault(
                piece.get("index", 0),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if isinstance(piece.get("id"), str):
                call["id"] = piece["id"]
            if isinstance(piece.get("type"), str):
                call["type"] = piece["type"]
            function = piece.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str) and function["name"]:
                    call["function"]["name"] = function["name"]
                if isinstance(function.get("arguments"), str):
                    call["function"]["arguments"] += function["arguments"]

    def choice(self) -> Choice:
        logprobs = {"content": self.logprobs} if self.logprobs else None
        tool_calls = [self.tool_calls[i] for i in sorted(self.tool_calls)] or None
        return Choice(
            "".join(self.parts), self.finish_reason, "".join(self.reasoning) or None, tool_calls, logprobs
        )


class StreamedAnswer:
    """The parts of a streamed answer, fed one `chat.completion.chunk` at a time."""

    def __init__(self, alias: str) -> None:
        self._alias = alias
        self._choices: dict[int, _Assembly] = {}
        self.usage: Usage | None = None
        self.saw_choices = False
        self.started = False  # a delta came out: a retry would repeat it

    def feed(self, chunk: dict[str, Any]) -> list[Delta]:
        """The deltas of `chunk`, in order; finish reasons and usage are kept."""
        alias = self._alias
        usage = reported_usage(alias, chunk.get("usage"))
        self.usage = usage or self.usage
        choices = chunk.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list):
            raise malformed(alias, "choices is not a list")
        deltas = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise malformed(alias, "a choice is not an object")
            self.saw_choices = True
            index = _index(alias, choice, 0)
            assembly = self._choices.get(index) or self._choices.setdefault(index, _Assembly())
            delta = choice.get("delta")
            if delta is not None and not isinstance(delta, dict):
                raise malformed(alias, "delta is not an object")
            delta = delta or {}
            content = _text(alias, "delta.content", delta.get("content"))
            reasoning = _reasoning(alias, delta)
            tool_calls = _tool_calls(alias, "delta.tool_calls", delta.get("tool_calls"))
            if tool_calls is None and delta.get("function_call") is not None:
                tool_calls = _legacy_call_piece(alias, assembly, delta["function_call"])
            logprobs = choice.get("logprobs")
            if content or reasoning or tool_calls or logprobs:
                deltas.append(Delta(content, reasoning, tool_calls, index, logprobs))
                assembly.parts.append(content)
                assembly.reasoning.append(reasoning)
                if tool_calls:
                    assembly.add_tool_calls(tool_calls)
                if isinstance(logprobs, dict) and isinstance(logprobs.get("content"), list):
                    assembly.logprobs += logprobs["content"]
            assembly.finish_reason = _finish_reason(alias, choice) or assembly.finish_reason
        self.started = self.started or bool(deltas)
        return deltas

    def choices(self) -> list[Choice]:
        return [self._choices[index].choice() for index in sorted(self._choices)]


def reported_usage(alias: str, usage: Any) -> Usage | None:
    """The provider's own token usage; None when it reported none (it is then estimated)."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        raise malformed(alias, "usage is not an object")
    prompt = _count(alias, "usage.prompt_tokens", usage.get("prompt_tokens"))
    completion = _count(alias, "usage.completion_tokens", usage.get("completion_tokens"))
    _count(alias, "usage.total_tokens", usage.get("total_tokens"))
    details = usage.get("prompt_tokens_details")
    if details is not None and not isinstance(details, dict):
        raise malformed(alias, "usage.prompt_tokens_details is not an object")
    cached = _count(alias, "usage.prompt_tokens_details.cached_tokens", (details or {}).get("cached_tokens"))
    out_details = usage.get("completion_tokens_details")
    if out_details is not None and not isinstance(out_details, dict):
        raise malformed(alias, "usage.completion_tokens_details is not an object")
    reasoning = _count(
        alias,
        "usage.completion_tokens_details.reasoning_tokens",
        (out_details or {}).get("reasoning_tokens"),
    )
    if prompt is None:
        return None
    return Usage(prompt, completion or 0, cached_tokens=cached or 0, reasoning_tokens=reasoning or 0)


def _count(alias: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise malformed(alias, f"{name} is not a token count: {_preview(value)}")
    return value


def _text(alias: str, name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise malformed(alias, f"{name} is not a string: {_preview(value)}")
    return value


def _index(alias: str, choice: dict[str, Any], default: int) -> int:
    index = choice.get("index", default)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_CHOICES:
        raise malformed(alias, f"choice index is not a small integer: {_preview(index)}")
    return index


def _reasoning(alias: str, message: dict[str, Any]) -> str:
    """Reasoning text, under the field name the provider uses (`reasoning_content`: DeepSeek, vLLM,
    Groq, Together; `reasoning`: OpenRouter, Ollama)."""
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return _text(alias, "reasoning_content", value)


def _tool_calls(alias: str, name: str, value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(call, dict) for call in value):
        raise malformed(alias, f"{name} is not a list of objects")
    for position, call in enumerate(value):
        if problem := _tool_call_problem(call):
            raise malformed(alias, f"{name}[{position}].{problem}")
    return value or None


def _tool_call_problem(call: dict[str, Any]) -> str | None:
    """What is wrong with one tool call (or a stream's piece of one), else None: every API reads these
    fields as OpenAI types them, so a wrong type fails the call here rather than a 500 further on."""
    index = call.get("index")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        return f"index is not a non-negative integer: {_preview(index)}"
    for field in ("id", "type"):
        if call.get(field) is not None and not isinstance(call[field], str):
            return f"{field} is not a string: {_preview(call[field])}"
    function = call.get("function")
    if function is None:
        return None
    if not isinstance(function, dict):
        return f"function is not an object: {_preview(function)}"
    for field in ("name", "arguments"):
        if function.get(field) is not None and not isinstance(function[field], str):
            return f"function.{field} is not a string: {_preview(function[field])}"
    return None


def _finish_reason(alias: str, choice: dict[str, Any]) -> str | None:
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise malformed(alias, f"finish_reason is not a string: {_preview(reason)}")
    if reason == "function_call":  # the legacy call is passed on as a tool call: say so
        return "tool_calls"
    return reason or None


def _preview(value: Any) -> str:
    """A short glimpse of a wrong value: a number or a short string as it is, else only its type (a
    long string could be anything, a key included)."""
    if isinstance(value, bool | int | float):
        return repr(value)[:40]
    if isinstance(value, str) and len(value) <= 16:
        return repr(value)
    return f"a {type(value).__name__}"


# The legacy shape of a call (`function_call`, before `tool_calls`), still answered by some servers when
# offered `functions` or by older OpenAI-compatible stacks: passed on as the one tool call it is, so a
# client that offered tools gets it (a client sees `tool_calls` only).


def _legacy_call(alias: str, value: Any) -> list[dict[str, Any]] | None:
    """A completion's `message.function_call` as a one-call `tool_calls` list."""
    if value is None:
        return None
    name = "message.function_call"
    if not isinstance(value, dict):
        raise malformed(alias, f"{name} is not an object")
    if not isinstance(value.get("name"), str) or not value["name"]:
        raise malformed(alias, f"{name}.name is not a non-empty string")
    arguments = _text(alias, f"{name}.arguments", value.get("arguments"))
    function = {"name": value["name"], "arguments": arguments}
    return [{"id": _legacy_call_id(), "type": "function", "function": function}]


def _legacy_call_piece(alias: str, assembly: _Assembly, value: Any) -> list[dict[str, Any]]:
    """A stream's `delta.function_call` piece as a tool-call piece of index 0: the first carries the
    call's id and name, the rest their arguments' next characters."""
    name = "delta.function_call"
    if not isinstance(value, dict):
        raise malformed(alias, f"{name} is not an object")
    function: dict[str, Any] = {}
    if value.get("name") is not None:
        function["name"] = _text(alias, f"{name}.name", value["name"])
    if value.get("arguments") is not None:
        function["arguments"] = _text(alias, f"{name}.arguments", value["arguments"])
    piece: dict[str, Any] = {"index": 0}
    if assembly.legacy_call_id is None:
        assembly.legacy_call_id = _legacy_call_id()
        piece |= {"id": assembly.legacy_call_id, "type": "function"}
    return [piece | {"function": function}]


def _legacy_call_id() -> str:
    """The legacy shape has no call id; the client needs one to send the call's result back."""
    return f"call_{uuid.uuid4().hex[:24]}"
