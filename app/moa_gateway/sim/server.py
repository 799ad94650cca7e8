"""The simulator as a standalone OpenAI-compatible server (`moa-gateway simulate`)."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from moa_gateway.sim import core
from moa_gateway.sim.prefix_cache import PrefixCache
from moa_gateway.sim.request_log import RequestLog
from moa_gateway.wire import sse
from moa_gateway.wire.errors import error_body

T = TypeVar("T")


def create_sim_app(defaults: core.SimProfile | None = None, api_key: str | None = None) -> FastAPI:
    """`api_key`, when set, is required as a bearer token, as a real provider would."""
    profile = defaults or core.SimProfile()
    faults = core.FaultCounter()
    cache = PrefixCache()  # usage.prompt_tokens_details.cached_tokens, as a provider's prompt cache
    app = FastAPI(title="moa-gateway simulator")
    app.add_middleware(RequestLog)
    started = int(time.time())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """A simulated chat completion."""
        body = await _read(request, api_key)
        if isinstance(body, Response):
            return body
        try:
            if body.get("stream"):
                chunks = core.stream(body, profile, faults, cache)
                # The first chunk validates the body before the 200 is sent.
                first = await _unless_disconnected(request, anext(chunks))
                return StreamingResponse(_frames(first, chunks), media_type="text/event-stream")
            completion = await _unless_disconnected(request, core.complete(body, profile, faults, cache))
            return Response(orjson.dumps(completion), media_type="application/json")
        except _ClientGone:
            return Response(status_code=499)  # nobody reads it
        except _SIMULATED_ERRORS as exc:
            return _fault_response(exc, _OVERSIZED_HEAD, _OVERSIZED_TAIL)

    @app.post("/v1/embeddings")
    async def create_embeddings(request: Request) -> Response:
        """Simulated embeddings."""
        body = await _read(request, api_key)
        if isinstance(body, Response):
            return body
        try:
            response = await _unless_disconnected(request, core.embed(body, profile, faults))
            return Response(orjson.dumps(response), media_type="application/json")
        except _ClientGone:
            return Response(status_code=499)
        except _SIMULATED_ERRORS as exc:
            return _fault_response(exc, _OVERSIZED_EMBEDDING_HEAD, _OVERSIZED_EMBEDDING_TAIL)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """Any model id works; these are examples."""
        ids = ["sim-alpha", "sim-beta", "sim-gamma", "sim-omega"]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": started} for i in ids]}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The simulator is alive."""
        return {"status": "ok"}

    return app


async def _read(request: Request, api_key: str | None) -> dict[str, Any] | Response:
    """The request's JSON object, or the error a real provider answers: 401 without the key, 400."""
    if api_key is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            return _error(401, "Invalid API key", "authentication_error")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400, "The body is not JSON", "invalid_request_error")
    if not isinstance(body, dict):
        return _error(400, "The body must be an object", "invalid_request_error")
    return body


_SIMULATED_ERRORS = (
    core.SimulatorRequestError,
    core.SimulatedHTTPError,
    core.SimulatedReset,
    core.SimulatedOversize,
)


def _fault_response(exc: Exception, oversized_head: bytes, oversized_tail: bytes) -> Response:
    """What a provider would send for a bad request or a simulated fault (both routes alike): an
    oversized body is the route's own JSON around `exc.size` bytes of filler."""
    if isinstance(exc, core.SimulatedHTTPError):
        return Response(exc.body, exc.status, headers=exc.headers, media_type=exc.media_type)
    if isinstance(exc, core.SimulatedReset):  # promise a whole body, send half, drop the connection
        length = str(2 * len(exc.partial) or 100)
        return StreamingResponse(
            _broken(exc.partial), media_type="application/json", headers={"content-length": length}
        )
    if isinstance(exc, core.SimulatedOversize):  # generated piece by piece, never held whole
        length = str(len(oversized_head) + exc.size + len(oversized_tail))
        return StreamingResponse(
            _oversized(oversized_head, exc.size, oversized_tail),
            media_type="application/json",
            headers={"content-length": length},
        )
    return _error(400, str(exc), "invalid_request_error")


def _error(status: int, message: str, error_type: str) -> Response:
    """OpenAI's error JSON, as a real provider sends it."""
    body = orjson.dumps(error_body(message, error_type))
    return Response(body, status_code=status, media_type="application/json")


class _ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


async def _unless_disconnected(request: Request, answer: Awaitable[T]) -> T:
    """`answer`, abandoned if the client goes away first: a hung answer (the `hang` and `endless_trickle`
    faults) must not outlive its caller, nor hold up the server's shutdown for an hour."""
    work = asyncio.ensure_future(answer)
    gone = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            work.cancel()
    if not work.done():
        raise _ClientGone()
    return work.result()


async def _disconnect(request: Request) -> None:
    """Return when the client disconnects (the body has been read: nothing else can come)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


_OVERSIZED_HEAD = (
    b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"'
)
_OVERSIZED_TAIL = b'"},"finish_reason":"stop"}]}'
# An oversized embeddings body: one huge base64 embedding (of "a"s), valid JSON once whole.
_OVERSIZED_EMBEDDING_HEAD = b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":"'
_OVERSIZED_EMBEDDING_TAIL = b'"}],"model":"sim","usage":{"prompt_tokens":1,"total_tokens":1}}'
_FLOOD_PIECE = 4096  # bytes of text per chunk of an oversized stream


async def _frames(first: dict[str, Any], chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield sse.event(first)
    try:
        async for chunk in chunks:
            yield sse.event(chunk)
    except core.SimulatedTruncation:
        return  # the body ends cleanly, the answer does not
    except core.SimulatedOversize as exc:
        piece = sse.event({"choices": [{"index": 0, "delta": {"content": "a" * _FLOOD_PIECE}}]})
        for _ in range(exc.size // _FLOOD_PIECE + 1):
            yield piece
        yield sse.event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield sse.DONE


async def _oversized(head: bytes, size: int, tail: bytes) -> AsyncIterator[bytes]:
    yield head
    block = b"a" * 65536
    for start in range(0, size, len(block)):
        yield block[: size - start]
    yield tail


async def _broken(partial: bytes) -> AsyncIterator[bytes]:
    yield partial
    raise core.SimulatedReset()
