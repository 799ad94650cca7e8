"""What a simulated answer holds beyond its text, per choice: a tool call, JSON for `response_format`,
reasoning, logprobs; `n` choices; and each choice's wire shapes (a message, or stream deltas).

Read from the request: `tools` and `tool_choice` (one call, of the named function or else the first;
`parallel_tool_calls` is accepted and one call is still made), a trailing `role: tool` message (then the
answer is text quoting the result, whatever `tool_choice` says, so an agent loop ends; with
`simulate.tool_rounds: N`, only once N rounds of tool results followed the last user message),
`response_format`, `n`, `logprobs`, `top_logprobs`, `reasoning_effort`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from moa_gateway.core.tokens import message_text
from moa_gateway.sim.schema import NOT_JSON, breaking, instance
from moa_gateway.sim.text import question_of, token_pieces

_THOUGHTS = ["first", "check", "the", "question", "then", "weigh", "each", "option", "and", "answer"]
_EFFORT_WORDS = {"minimal": 4, "low": 8, "medium": 16, "high": 32, "xhigh": 48}
_ALTERNATIVES = ["the", "a", "and", "of", "to", "in", "is", "it", "that", "on", "for", "as", "with", "by"]
_RESULT_HEAD = 100  # characters of a tool result quoted in the answer that follows it
_MAX_N, _MAX_TOP_LOGPROBS = 128, 20


class BadRequest(ValueError):
    """A field of the request is not what the Chat Completions API accepts."""


@dataclass(frozen=True)
class Asked:
    """What a request asks of each choice, beyond text."""

    n: int = 1
    tool: dict[str, Any] | None = None  # the function to call (`name`, `parameters`); None: text
    tool_results: tuple[str, ...] = ()  # the trailing `role: tool` messages' text
    format: str = "text"  # text | json_object | json_schema
    schema: Any = None
    logprobs: bool = False
    top_logprobs: int = 0
    reasoning: str | None = None  # the effort, when the answer carries `reasoning_content`
    think_tags: bool = False  # the content starts with the reasoning in <think>...</think>
    break_schema: bool = False  # the `schema_invalid` fault

    @property
    def plain(self) -> bool:
        """Nothing beyond one text choice: the simulator's fast path."""
        return self == _PLAIN


_PLAIN = Asked()


def asked_of(body: dict[str, Any], *, reasoning: bool, think_tags: bool, tool_rounds: int = 1) -> Asked:
    """The request's agent fields, checked as the Chat Completions API checks them. With tools offered,
    a tool call is made while fewer than `tool_rounds` rounds of tool results followed the last user
    message."""
    n = body.get("n")
    n = 1 if n is None else n
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
        raise BadRequest(f"'n' is an integer from 1 to {_MAX_N}")
    logprobs, top = body.get("logprobs"), body.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= _MAX_TOP_LOGPROBS:
            raise BadRequest(f"'top_logprobs' is an integer from 0 to {_MAX_TOP_LOGPROBS}")
        if logprobs is not True:
            raise BadRequest("'logprobs' must be true when 'top_logprobs' is set")
    effort = body.get("reasoning_effort")
    if not isinstance(effort, str) or effort == "none":
        effort = "medium" if reasoning else None
    messages = body.get("messages") or []
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, message_text(message))
    fmt, schema = _response_format(body.get("response_format"))
    tool = _tool(body.get("tools"), body.get("tool_choice"), body.get("parallel_tool_calls"))
    return Asked(
        n=n,
        tool=None if results and _tool_rounds(messages) >= tool_rounds else tool,
        tool_results=tuple(results),
        format=fmt,
        schema=schema,
        logprobs=logprobs is True,
        top_logprobs=top or 0,
        reasoning=effort,
        think_tags=think_tags,
    )


def _tool_rounds(messages: list[Any]) -> int:
    """Runs of tool results since the last user message: the agent loop's rounds so far."""
    rounds, previous = 0, None
    for message in reversed(messages):
        role = message.get("role")
        if role == "user":
            break
        rounds += role == "tool" and previous != "tool"
        previous = role
    return rounds


def _tool(tools: Any, tool_choice: Any, parallel: Any) -> dict[str, Any] | None:
    if tools is None:
        if tool_choice is not None or parallel is not None:  # as OpenAI: a leak shows
            raise BadRequest("'tool_choice' and 'parallel_tool_calls' are only allowed with 'tools'")
        return None
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list")
    functions = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"'tools[{i}]' must be {{'type': 'function', 'function': {{'name': ...}}}}")
        functions.append(function)
    if not functions or tool_choice == "none":
        return None
    if tool_choice is None or tool_choice in ("auto", "required"):
        return functions[0]
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    chosen = next((f for f in functions if f["name"] == name), None)
    if chosen is None:
        raise BadRequest(
            "'tool_choice' is none, auto, required, or {'type': 'function', 'function': {'name': <a tool>}}"
        )
    return chosen


def _response_format(value: Any) -> tuple[str, Any]:
    if value is None:
        return "text", None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return kind, None
    if kind == "json_schema":
        spec = value.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("name"), str):
            schema = spec.get("schema", {})
            if isinstance(schema, dict | bool):
                return kind, schema
        raise BadRequest("'response_format.json_schema' needs a 'name' and an object 'schema'")
    raise BadRequest("'response_format.type' is text, json_object or json_schema")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    pieces: list[str]  # the arguments (a JSON text), one token each

    @property
    def arguments(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True)
class Choice:
    index: int
    pieces: list[str]  # the content, one token each; empty for a tool call
    finish_reason: str
    reasoning: tuple[str, ...] = ()  # `reasoning_content`, one token each
    tool_call: ToolCall | None = None
    logprobs: tuple[dict[str, Any], ...] | None = None  # one entry per content piece, when asked for

    @property
    def completion_tokens(self) -> int:
        calls = len(self.tool_call.pieces) if self.tool_call else 0
        return len(self.pieces) + len(self.reasoning) + calls

    @property
    def steps(self) -> int:
        """Stream chunks after the role chunk, before the finish chunk: one per token (and the tool
        call's header), which is also how long the choice takes to generate."""
        return self.completion_tokens + (1 if self.tool_call else 0)

    def body(self) -> dict[str, Any]:
        """The choice of a non-streamed completion."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if self.tool_call else "".join(self.pieces),
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_call:
            call = self.tool_call
            function = {"name": call.name, "arguments": call.arguments}
            message["tool_calls"] = [{"id": call.id, "type": "function", "function": function}]
        choice: dict[str, Any] = {"index": self.index, "message": message}
        if self.logprobs is not None:
            choice["logprobs"] = {"content": None if self.tool_call else list(self.logprobs), "refusal": None}
        choice["finish_reason"] = self.finish_reason
        return choice

    def role_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": None if self.tool_call else ""}

    def deltas(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(delta, its token's logprob entry) for each step: reasoning first, then the content or the
        tool call (its id and name with empty arguments, then the arguments piece by piece)."""
        steps: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
            ({"reasoning_content": piece}, None) for piece in self.reasoning
        ]
        if self.tool_call:
            call = self.tool_call
            head = {
                "index": 0,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            steps.append(({"tool_calls": [head]}, None))
            steps += [
                ({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}, None) for p in call.pieces
            ]
        else:
            entries = self.logprobs or [None] * len(self.pieces)
            steps += [({"content": p}, e) for p, e in zip(self.pieces, entries, strict=True)]
        return steps


def stream_chunk(
    base: dict[str, Any],
    logprobs: bool,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    index: int = 0,
    logprob: Any = None,
) -> dict[str, Any]:
    """One chunk of a streamed completion: `base` (id, object, created, model) and one choice's delta."""
    choice: dict[str, Any] = {"index": index, "delta": delta}
    if logprobs:
        choice["logprobs"] = None if logprob is None else {"content": [logprob], "refusal": None}
    choice["finish_reason"] = finish_reason
    return {**base, "choices": [choice]}


def variant_seed(seed: int | None, index: int) -> int | None:
    """The seed choice `index` is written with: the request's for the first, another for each next."""
    return seed if index == 0 else _digest(str(seed), "variant", str(index)) >> 1


def build(
    index: int,
    text: str,
    asked: Asked,
    *,
    model: str,
    messages: list[dict[str, Any]],
    seed: int | None,
    limit: int | None,
) -> Choice:
    """Choice `index`, whose plain answer would be `text` (deterministic in all the arguments)."""
    if asked.plain:  # the common case, as cheap as it was before there were options
        return _text_choice(index, token_pieces(text, None), limit)
    key = _digest(
        model, "\x1e".join(f"{m.get('role')}:{message_text(m)}" for m in messages), str(seed), str(index)
    )
    reasoning = _reasoning_text(messages, asked.reasoning or "medium", key)
    thought = tuple(token_pieces(reasoning, None)) if asked.reasoning else ()
    if asked.tool is not None:
        arguments = orjson.dumps(instance(asked.tool.get("parameters", {}), key)).decode()
        call = ToolCall(
            f"call_{key:016x}{_digest(str(key)) & 0xFFFFFFFF:08x}", asked.tool["name"], _pieces(arguments)
        )
        return Choice(index, [], "tool_calls", thought, call)
    if asked.tool_results:
        quoted = " | ".join(" ".join(r.split())[:_RESULT_HEAD] for r in asked.tool_results)
        text = f"{text} Based on the tool result: {quoted}"
    if asked.format == "json_schema":
        text = (
            breaking(asked.schema)
            if asked.break_schema
            else orjson.dumps(instance(asked.schema, key)).decode()
        )
    elif asked.format == "json_object":
        text = NOT_JSON if asked.break_schema else orjson.dumps({"answer": text}).decode()
    if asked.think_tags:
        text = f"<think>\n{reasoning}\n</think>\n\n{text}"
    choice = _text_choice(index, _pieces(text), limit)
    logprobs = None
    if asked.logprobs:
        logprobs = tuple(_logprob_entry(p, i, key, asked.top_logprobs) for i, p in enumerate(choice.pieces))
    return Choice(index, choice.pieces, choice.finish_reason, thought, None, logprobs)


def _text_choice(index: int, pieces: list[str], limit: int | None) -> Choice:
    if limit is not None and len(pieces) > limit:
        pieces = pieces[:limit]
        pieces[-1] = pieces[-1].rstrip()
        return Choice(index, pieces, "length")
    return Choice(index, pieces, "stop")


def _pieces(text: str) -> list[str]:
    """One-token pieces that join back to exactly `text` (JSON is sent as it was made)."""
    pieces = token_pieces(text, None)
    return pieces if "".join(pieces) == text else [text]


def _reasoning_text(messages: list[dict[str, Any]], effort: str, key: int) -> str:
    count = _EFFORT_WORDS.get(effort, _EFFORT_WORDS["medium"])
    words = [_THOUGHTS[(key >> (i % 56)) % len(_THOUGHTS)] for i in range(count)]
    return f"Thinking about '{question_of(messages)}': {' '.join(words)}."


def _logprob_entry(token: str, position: int, key: int, top: int) -> dict[str, Any]:
    logprob = -round(0.001 + _digest(token, str(position), str(key)) % 2500 / 1000, 4)
    alternatives = [w for w in _ALTERNATIVES if w != token.strip()][: max(0, top - 1)]
    top_entries = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}] if top else []
    top_entries += [
        {"token": w, "logprob": round(logprob - 0.5 * (j + 1), 4), "bytes": list(w.encode())}
        for j, w in enumerate(alternatives)
    ]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top_entries}


def _digest(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")
