"""Admission for the guarded endpoints (every POST under /v1/, see guarded.py): refuse while
draining (503) or above the concurrency cap (429), cap the body (413), and cancel the request, with
every upstream call in it, when the client disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moa_gateway.api.middleware.responses import send_error
from moa_gateway.api.record import CLIENT_CLOSED, record_of
from moa_gateway.runtime import Lifecycle

logger = logging.getLogger(__name__)


class ChatGuardMiddleware:
    """For the guarded routes: refuse while draining (503), cap the body (413), read it, and only then take
    a concurrency slot or refuse above the cap (429): a client slow to send its body holds no slot (the
    server protocol bounds how long it may take, see app/moa_gateway/server.py). Cancel the request, with every
    upstream call in it, as soon as the client disconnects, and record it as 499."""

    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Lifecycle,
        max_concurrent: int,
        max_body_bytes: int,
        guarded: Callable[[Scope], bool],
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.max_concurrent = max_concurrent
        self.max_body_bytes = max_body_bytes
        self.guarded = guarded
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        retry_soon = {"retry-after": "1"}
        if self.lifecycle.draining:
            await send_error(
                send, 503, "The gateway is shutting down", "server_error", "shutting_down", retry_soon
            )
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = await self._read_body(scope, receive, send)
        if body is None:
            return
        if self.active >= self.max_concurrent:
            message = f"The gateway is serving its limit of {self.max_concurrent} requests; retry shortly"
            await send_error(send, 429, message, "rate_limit_error", "concurrency_limit", retry_soon)
            return
        self.active += 1
        try:
            await self._serve(scope, body, receive, send)
        finally:
            self.active -= 1

    async def _too_large(self, send: Send) -> None:
        message = f"The request body is larger than {self.max_body_bytes} bytes"
        await send_error(send, 413, message, "invalid_request_error", "request_too_large")

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once answered (413) or if the client left before sending it all."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Gone before the body arrived: nothing to answer. The protocol may have set 408.
                record = record_of(scope)
                record.status = record.status or CLIENT_CLOSED
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _serve(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """Run the app in a task of its own, replaying the body to it, while this middleware, the only
        reader of `receive`, cancels that task on `http.disconnect`."""
        disconnected = asyncio.Event()
        replayed = False

        async def app_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        answered = False

        async def send_tracking_end(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = (
                    True  # after this the server reports `http.disconnect` at once: not a client leaving
                )

        async def run_app() -> None:
            await self.app(scope, app_receive, send_tracking_end)

        app_task = asyncio.create_task(run_app())

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            if not app_task.done() and not answered:
                logger.info("client disconnected: cancelling the request")
                # Whatever the status sent or meant (a stream's 200), the client did not get the answer.
                record_of(scope).status = CLIENT_CLOSED
                app_task.cancel()

        watcher = asyncio.create_task(watch())
        try:
            await app_task
        except asyncio.CancelledError:
            if not disconnected.is_set() or _cancelling():
                raise  # the server is cancelling us, not the client leaving
        finally:
            watcher.cancel()
            if not app_task.done():
                app_task.cancel()


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
