"""The simulator as a standalone OpenAI-compatible server (`moa-gateway simulate`)."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from app.api import sse
from app.api.errors import error_response
from app.errors import error_body
from app.upstream.simulator import core


def create_sim_app(defaults: core.SimProfile | None = None, api_key: str | None = None) -> FastAPI:
    """`api_key`, when set, is required as a bearer token, as a real provider would."""
    profile = defaults or core.SimProfile()
    faults = core.FaultCounter()
    app = FastAPI(title="moa-gateway simulator")
    started = int(time.time())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """A simulated chat completion."""
        if api_key is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return error_response(401, error_body("Invalid API key", "authentication_error"))
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return error_response(400, error_body("The body is not JSON", "invalid_request_error"))
        if not isinstance(body, dict):
            return error_response(400, error_body("The body must be an object", "invalid_request_error"))
        try:
            if body.get("stream"):
                chunks = core.stream(body, profile, faults)
                first = await anext(chunks)  # validates the body before the 200 is sent
                return StreamingResponse(_frames(first, chunks), media_type="text/event-stream")
            completion = await core.complete(body, profile, faults)
            return Response(orjson.dumps(completion), media_type="application/json")
        except core.SimulatorRequestError as exc:
            return error_response(400, error_body(str(exc), "invalid_request_error"))
        except core.SimulatedHTTPError as exc:
            return Response(exc.body, exc.status, headers=exc.headers, media_type=exc.media_type)
        except core.SimulatedReset as exc:  # promise a whole body, send half, drop the connection
            length = str(2 * len(exc.partial) or 100)
            return StreamingResponse(
                _broken(exc.partial), media_type="application/json", headers={"content-length": length}
            )
        except core.SimulatedOversize as exc:  # generated piece by piece, never held whole
            head, tail = _OVERSIZED_HEAD, _OVERSIZED_TAIL
            length = str(len(head) + exc.size + len(tail))
            return StreamingResponse(
                _oversized(head, exc.size, tail),
                media_type="application/json",
                headers={"content-length": length},
            )

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


_OVERSIZED_HEAD = (
    b'{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"'
)
_OVERSIZED_TAIL = b'"},"finish_reason":"stop"}]}'
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
