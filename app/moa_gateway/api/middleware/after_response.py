"""Chat completions: background work a request asked for (its shadow evaluation) starts only once the
response's last byte has been sent, and only if the request succeeded; and the count of chat requests
in flight, by which such work is shed first when the gateway is busy."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import StatusNoted
from moa_gateway.api.record import record_of
from moa_gateway.runtime import Lifecycle


class AfterResponseMiddleware:
    def __init__(self, app: ASGIApp, lifecycle: Lifecycle, guarded: Callable[[Scope], bool]) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)  # the route hands `record.after_response` to its service
        sent = StatusNoted(send)

        self.lifecycle.chat_in_flight += 1
        try:
            await self.app(scope, receive, sent)
        finally:
            self.lifecycle.chat_in_flight -= 1
        # Not for a failure, nor a stream that failed after its 200 (`record.status`): nothing to compare.
        if record.after_response and record.result is not None and (record.status or sent.code) == 200:
            for start in record.after_response:
                start(record.result)
