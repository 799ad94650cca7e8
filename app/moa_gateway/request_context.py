"""The request id of the request being served, for its log lines and the `x-request-id` the upstream
calls carry. Ambient on purpose: every log line in every layer carries it, so it is set once, at the
edge, and only read below; no behaviour depends on it."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
