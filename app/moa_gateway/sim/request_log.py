"""One log line per request to the standalone simulator (`moa-gateway simulate`): method, path, status and
time to the last byte, so whoever runs it sees what reaches it."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("moa_gateway.sim.requests")


class RequestLog:
    """Pure ASGI (a stream is logged once sent whole, and nothing is buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed_ms)
