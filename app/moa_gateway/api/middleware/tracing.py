"""The `invoke_workflow` span of each request to a guarded endpoint (every POST under /v1/), to its last
byte; installed only with tracing on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import StatusNoted
from moa_gateway.api.record import record_of
from moa_gateway.core.types import MoaResult

# The W3C trace context only: a client's baggage is not taken in, so it never travels on to providers.
_TRACE_HEADERS = (b"traceparent", b"tracestate")


class RequestTracer(Protocol):
    """What this middleware needs of tracing (telemetry/tracing.py's Tracing, given to it by the app): the
    HTTP layer sees no OpenTelemetry type."""

    def request_span(self, headers: Mapping[str, str]) -> AbstractContextManager[Any]:
        """The request's span, current while the request runs; `headers` hold the client's trace context."""
        ...

    def end_request(
        self, span: Any, *, model: str, stream: bool, status: int, result: MoaResult | None
    ) -> None: ...


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: RequestTracer, guarded: Callable[[Scope], bool]) -> None:
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
