"""Log setup: one line per event, as text or JSON (`MOA_LOG_FORMAT`), carrying the request id.

Structured events pass their fields as `extra={"fields": {...}}`; the text format shows them as
`key=value` pairs, the JSON format as keys of the line's object. Log lines carry values a client or an
upstream chose (a model id, an error text), so both formats escape control characters, which could
otherwise write a forged line, and cut every such value to a few KiB.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from moa_gateway.request_context import request_id_var

DEFAULT_VALUE_CHARS = 2048
# C0 and C1 controls, and the Unicode line and paragraph separators some log viewers break lines on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or f"\\x{ord(char):02x}"


def safe_text(value: object, limit: int = DEFAULT_VALUE_CHARS) -> str:
    """`value` as one line: control characters escaped, cut to `limit` characters with a marker."""
    text = _CONTROL.sub(_escape, str(value))  # escaped first, so the cut bounds what is written
    if len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit} more chars]"
    return text


def fields_text(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the message made safe (a traceback, ours, stays multi-line)."""

    def __init__(self, value_chars: int = DEFAULT_VALUE_CHARS) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s")
        self._line_chars = 4 * value_chars

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            message = " ".join(
                f"{key}={safe_text(value, self._line_chars // 4)}"
                for key, value in fields.items()
                if value is not None
            )
        else:
            message = record.getMessage()
        record.message = safe_text(message, self._line_chars)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """JSON lines; JSON escapes control characters itself, string values are cut to `value_chars`."""

    def __init__(self, value_chars: int = DEFAULT_VALUE_CHARS) -> None:
        super().__init__()
        self._value_chars = value_chars

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, under `serve --workers N`
            "request_id": getattr(record, "request_id", "-"),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        for key, value in line.items():
            if isinstance(value, str) and len(value) > self._value_chars:
                line[key] = safe_text(value, self._value_chars)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str, fmt: str = "text", value_chars: int = DEFAULT_VALUE_CHARS) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter(value_chars) if fmt == "json" else TextFormatter(value_chars))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its per-request INFO lines duplicate ours
    # Its DEBUG trace writes each upstream's and proxy's status line and headers as they came, which may
    # echo the credentials the gateway sent (Proxy-Authorization, a Basic token): never scrubbed.
    logging.getLogger("httpcore").setLevel(logging.WARNING)
