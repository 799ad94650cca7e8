"""The last resort: an unexpected exception becomes a 500 in OpenAI's shape, inside the request-id
middleware, so it carries `x-request-id` and `x-should-retry: false`."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moa_gateway.api.middleware.responses import send_error

logger = logging.getLogger(__name__)


class ErrorBoundaryMiddleware:
    """Turns an unexpected exception into a 500 in OpenAI's shape, inside the request-id middleware.

    Starlette would send a handler for `Exception` from its outermost middleware, past ours: that 500
    had no `x-request-id` and no `x-should-retry`, so SDKs re-ran the whole fan-out twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            logger.exception("%s %s -> 500", scope.get("method", ""), scope.get("path", ""))
            if started:
                raise  # part of a response went out: only closing the connection tells the client
            await send_error(send, 500, "The gateway failed unexpectedly", "server_error", None)
