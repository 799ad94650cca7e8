"""A scripted upstream that answers with raw bytes, so it can break HTTP itself (a bad status line, a huge
header, a cut body, a gzip bomb) where a FastAPI app cannot. An asyncio TCP server on 127.0.0.1, run on
its own event loop in a background thread; each answer is chosen by the requested model name, or by
`next_answer` when the test sets it."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import httpx
import pytest

from tests.support.loop_server import LoopServer, read_request_body

Script = Callable[[dict[str, Any]], AsyncIterator[bytes]]


def head(status: bytes = b"200 OK", headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [b"HTTP/1.1 " + status, b"connection: close"]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def raw(*pieces: bytes, gap_s: float = 0.0) -> Script:
    """Exactly these bytes, then the connection closes."""

    async def script(request: dict[str, Any]) -> AsyncIterator[bytes]:
        for piece in pieces:
            if gap_s:
                await asyncio.sleep(gap_s)
            yield piece

    return script


def body(
    content: bytes,
    *,
    status: bytes = b"200 OK",
    content_type: str = "application/json",
    encoding: str | None = None,
) -> Script:
    """A whole body with its content-length."""
    headers = [("content-type", content_type), ("content-length", str(len(content)))]
    if encoding:
        headers.append(("content-encoding", encoding))
    return raw(head(status, headers) + content)


def json_body(payload: Any, **kwargs: Any) -> Script:
    return body(json.dumps(payload).encode(), **kwargs)


def completion(content: Any = "ok", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        **extra,
    }


def frame(payload: Any) -> bytes:
    return b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode()) + b"\n\n"


def chunk(delta: dict[str, Any], finish: Any = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "choices": [choice], **extra}


SSE_HEAD = head(headers=[("content-type", "text/event-stream")])
ROLE = frame(chunk({"role": "assistant", "content": ""}))


def sse(*frames: bytes, gap_s: float = 0.0, encoding: str | None = None) -> Script:
    """An event stream of these frames (delimited by the connection's close)."""
    if encoding == "gzip":
        headers = [("content-type", "text/event-stream"), ("content-encoding", "gzip")]
        return raw(head(headers=headers) + gzip.compress(b"".join(frames)))
    return raw(SSE_HEAD, *frames, gap_s=gap_s)


def well_formed(text: str = "ok") -> Script:
    """A correct answer, streamed or not as asked."""
    plain = json_body(completion(text, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}))
    streamed = sse(
        ROLE,
        frame(chunk({"content": text})),
        frame(chunk({}, "stop")),
        frame(
            {
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        ),
        frame(b"[DONE]"),
    )

    async def script(request: dict[str, Any]) -> AsyncIterator[bytes]:
        async for piece in (streamed if request.get("stream") else plain)(request):
            yield piece

    return script


class RawUpstream(LoopServer):
    """`with RawUpstream(scripts) as upstream:` answers a request for model M with `scripts[M]` (else a
    well-formed answer) on `upstream.url`; `seen` lists the models asked for, in order."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        super().__init__()
        self.scripts = dict(scripts or {})
        self.next_answer: Script | None = None  # when set, every request gets this answer
        self.seen: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = await read_request_body(reader)
        payload = json.loads(body) if body else {}
        request = payload if isinstance(payload, dict) else {}
        model = str(request.get("model", ""))
        self.seen.append(model)
        script = self.next_answer or self.scripts.get(model) or well_formed(f"answer of {model}")
        async for piece in script(request):
            writer.write(piece)
            await writer.drain()


def post_within(url: str, body: dict[str, Any], seconds: float = 10.0) -> httpx.Response:
    """POST `body` and read the whole answer, failing the test if that takes over `seconds` in all
    (httpx's own timeout bounds each read only: an answer that trickles forever would never end it)."""
    deadline = time.monotonic() + seconds
    received = bytearray()
    with httpx.stream("POST", url, json=body, timeout=seconds) as response:
        for piece in response.iter_raw():
            received += piece
            if time.monotonic() > deadline:
                pytest.fail(f"no complete answer within {seconds:g}s")
    return httpx.Response(response.status_code, headers=response.headers, content=bytes(received))
