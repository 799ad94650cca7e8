"""Per-request context shared by the middleware, the logs and the upstream client."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# W3C trace context (`traceparent`, `tracestate`) of the upstream call being made, set by the tracing
# observer as the call starts; None while tracing is off.
upstream_trace_var: ContextVar[dict[str, str] | None] = ContextVar("upstream_trace", default=None)
