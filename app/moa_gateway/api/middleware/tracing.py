"""The `invoke_workflow` span of each request to a guarded endpoint (every POST under /v1/), to its last
byte; installed only with tracing on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import StatusNoted
from moa_gateway.api.record import record_of

if TYPE_CHECKING:  # OpenTelemetry is an optional extra: imported only when tracing is on
    from moa_gateway.telemetry.tracing import Tracing

# The W3C trace context only: a client's baggage is not taken in, so it never travels on to providers.
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing, guarded: Callable[[Scope], bool]) -> None:
        self.app = app
        self.tracing = tracing
        self.guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS
        }
        sent = StatusNoted(send)

        with self.tracing.request_span(headers) as span:
            try:
                await self.app(scope, receive, sent)
            finally:
                self.tracing.end_request(
                    span,
                    model=record.model,
                    stream=record.stream,
                    status=record.status or sent.code,
                    result=record.result,
                )
