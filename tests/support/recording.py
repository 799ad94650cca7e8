"""A recording upstream: the simulator's app, with every chat completion body it received kept, so a
test can assert what each proposer and the aggregator were sent."""

from __future__ import annotations

import threading
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Recorder:
    """ASGI middleware in front of an upstream app: keeps the JSON body of each POST, by path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._bodies: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {"_raw": raw.decode(errors="replace")}
        with self._lock:
            self._bodies.append((scope["path"], body))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    def clear(self) -> None:
        with self._lock:
            self._bodies.clear()

    def bodies(self, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
        with self._lock:
            return [body for p, body in self._bodies if p == path]

    def sent_to(self, model: str, path: str = "/v1/chat/completions") -> list[dict[str, Any]]:
        """The bodies the upstream received for `model`, in arrival order."""
        return [body for body in self.bodies(path) if body.get("model") == model]
