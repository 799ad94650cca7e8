"""What every route's streamed answer shares: the wait before it commits to its 200 (something its
client sees, an answer delta, the end of the run or its failure, or one keep-alive interval, so a fast
failure keeps its status), and the event-stream response itself. Also the OpenAPI note of a JSON body."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from moa_gateway.core.events import Event, FinalDelta, RunFailed, RunFinished
from moa_gateway.wire import sse

ClientEvent = (FinalDelta, RunFinished, RunFailed)  # the events an answer's client sees
Batches = AsyncGenerator[list[Event] | sse.KeepAlive, None]


async def committed(
    batches: Batches, *, commit_on: tuple[type, ...] = ClientEvent, keep_inner: bool = False
) -> tuple[list[Event] | sse.KeepAlive, Batches]:
    """The first batch worth a 200 (one holding a `commit_on` event, or a keep-alive) and the batches
    after it; raises the run's Failure if it failed before anything was sent. The run's inner events
    (layers, calls) before it are dropped, or with `keep_inner` put in front of it."""
    held: list[Event] = []
    first = await anext(batches)
    while isinstance(first, list) and not any(isinstance(e, commit_on) for e in first):
        if keep_inner:
            held += first
        first = await anext(batches)
    if held:
        first = held + first if isinstance(first, list) else held
    if isinstance(first, list):
        seen = next((e for e in first if isinstance(e, ClientEvent)), None)
        if isinstance(seen, RunFailed):
            await batches.aclose()
            raise seen.failure
    return first, batches


class _EventStream(StreamingResponse):
    """Notes on its clock each write of the body: only bytes the client was sent put off a keep-alive.
    Closes its frames however the response ends: a client that left (the request's task cancelled
    while a write was under way) closes the run at once, not when the generator is collected."""

    def __init__(self, frames: AsyncGenerator[bytes, None], clock: sse.SendClock) -> None:
        super().__init__(
            frames,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._clock = clock
        self._frames = frames

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Only the stream: no task group with a task listening for `http.disconnect` as Starlette
        runs under uvicorn (ASGI 2.3), ~3% of a streamed MoA request's instructions. Every stream
        answers a guarded route, whose admission middleware is the one reader of `receive` and cancels
        the request when the client leaves (api/middleware/admission.py)."""
        try:
            await self.stream_response(send)
        except OSError as exc:  # as Starlette does under ASGI 2.4
            raise ClientDisconnect() from exc

    async def stream_response(self, send: Send) -> None:
        clock = self._clock

        async def clocked(message: Message) -> None:
            await send(message)
            if message.get("body"):
                clock.sent()

        try:
            await super().stream_response(clocked)
        finally:
            await self._frames.aclose()


def event_stream(frames: AsyncGenerator[bytes, None], clock: sse.SendClock) -> StreamingResponse:
    """A `text/event-stream` response, uncached and unbuffered by proxies, noting its writes on `clock`
    (the one its keep-alive ticker, `sse.with_keepalive`, runs on)."""
    return _EventStream(frames, clock)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its JSON body itself: the body's schema, for /docs."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
