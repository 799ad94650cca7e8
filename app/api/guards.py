"""Pure-ASGI guards in front of the API: gateway keys, admission control, body size, client disconnects."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body

logger = logging.getLogger(__name__)

CLIENT_CLOSED = 499  # nginx's status for a request whose client left before the answer


@dataclass
class Lifecycle:
    """Set `draining` when shutdown begins: new requests get 503 so a load balancer moves on."""

    draining: bool = False


async def send_error(
    send: Send, status: int, message: str, error_type: str, code: str, headers: dict[str, str] | None = None
) -> None:
    body = orjson.dumps(error_body(message, error_type, code=code))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


# Probes and metrics carry no secrets, and a prober or scraper holds no key.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AuthMiddleware:
    """With gateway keys configured, every path but OPEN_PATHS needs `Authorization: Bearer <key>`: the
    API, and also `/docs`, `/redoc` and `/openapi.json`, which describe it.

    Keys are kept as SHA-256 digests and compared in constant time, against every digest.
    """

    def __init__(self, app: ASGIApp, key_digests: list[str]) -> None:
        self.app = app
        self.digests = [bytes.fromhex(d) for d in key_digests]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.digests or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, key = header.partition(b" ")
        presented = hashlib.sha256(key.strip()).digest()
        matched = False
        for digest in self.digests:  # no early exit: time does not tell which key is close
            matched |= hmac.compare_digest(presented, digest)
        if scheme.lower() != b"bearer" or not matched:
            await send_error(
                send,
                401,
                "Incorrect or missing API key: send `Authorization: Bearer <key>`",
                "invalid_request_error",
                "invalid_api_key",
                {"www-authenticate": "Bearer", "x-should-retry": "false"},
            )
            return
        await self.app(scope, receive, send)


class ChatGuardMiddleware:
    """For chat completions: refuse while draining (503), cap the body (413), read it, and only then take
    a concurrency slot or refuse above the cap (429): a client slow to send its body holds no slot (the
    server protocol bounds how long it may take, see app/server.py). Cancel the request, with every
    upstream call in it, as soon as the client disconnects, and record it as 499."""

    def __init__(
        self, app: ASGIApp, lifecycle: Lifecycle, max_concurrent: int, max_body_bytes: int, path: str
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.max_concurrent = max_concurrent
        self.max_body_bytes = max_body_bytes
        self.path = path
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
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
        await send_error(
            send, 413, message, "invalid_request_error", "request_too_large", {"x-should-retry": "false"}
        )

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once answered (413) or if the client left before sending it all."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # Gone before the body arrived: nothing to answer. The protocol may have set 408.
                scope.setdefault("state", {}).setdefault("moa_status", CLIENT_CLOSED)
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
                scope.setdefault("state", {})["moa_status"] = CLIENT_CLOSED
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
