"""What an upstream answer must hold, checked field by field: the first choice of a completion, the
deltas of a stream, the token usage. Anything else fails that one call as a `bad_response`."""

from __future__ import annotations

from typing import Any

from app.core.failures import Failure
from app.core.types import Usage
from app.upstream.failures import upstream_error

# No call uses 4 billion tokens; and counts summed over a request must stay within JSON's 64-bit ints.
MAX_TOKEN_COUNT = 2**32


def malformed(alias: str, what: str) -> Failure:
    return upstream_error(f"model {alias}: malformed response ({what})", model=alias)


def completion_choice(alias: str, payload: dict[str, Any]) -> tuple[str, str]:
    """The text and finish reason of a `chat.completion`'s first choice."""
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise malformed(alias, "choices is not a non-empty list")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise malformed(alias, "no choices[0].message")
    text = _text(alias, "message.content", message.get("content"))
    return text, _finish_reason(alias, choice) or "stop"


class StreamedAnswer:
    """The parts of a streamed answer, fed one `chat.completion.chunk` at a time."""

    def __init__(self, alias: str) -> None:
        self._alias = alias
        self.parts: list[str] = []
        self.finish_reason = "stop"
        self.usage: Usage | None = None
        self.saw_choices = False

    def feed(self, chunk: dict[str, Any]) -> list[str]:
        """The text deltas of `chunk`, in order; the finish reason and usage are kept."""
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
            delta = choice.get("delta")
            if delta is not None and not isinstance(delta, dict):
                raise malformed(alias, "delta is not an object")
            content = _text(alias, "delta.content", (delta or {}).get("content"))
            if content:
                deltas.append(content)
            self.finish_reason = _finish_reason(alias, choice) or self.finish_reason
        self.parts += deltas
        return deltas


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
    if prompt is None:
        return None
    return Usage(prompt, completion or 0, cached_tokens=cached or 0)


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


def _finish_reason(alias: str, choice: dict[str, Any]) -> str | None:
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        raise malformed(alias, f"finish_reason is not a string: {_preview(reason)}")
    return reason or None


def _preview(value: Any) -> str:
    """A short glimpse of a wrong value: a number or a short string as it is, else only its type (a
    long string could be anything, a key included)."""
    if isinstance(value, bool | int | float):
        return repr(value)[:40]
    if isinstance(value, str) and len(value) <= 16:
        return repr(value)
    return f"a {type(value).__name__}"
