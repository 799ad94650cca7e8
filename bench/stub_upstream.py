"""A minimal OpenAI-compatible upstream for benchmarks: raw asyncio (uvloop when installed), HTTP/1.1
keep-alive, and the same fixed answer to every request, as JSON or as an SSE stream, sent at once.

It costs far less CPU per request than the simulator (FastAPI), so on a small machine it leaves the
cores to the gateway and the load generator. Every body of a chat completion gets an answer; a body
carrying `"stream": true` gets a stream (with a usage chunk when it asks for `include_usage`).

    .venv/bin/python -m bench.stub_upstream --port 9100 [--delay-ms 1000] [--delay agg=500 ...]

With a delay, each answer is sent that long after its request arrived (a timer, no task), as a model
that takes that long to answer would; `--delay MODEL=MS` sets it for one upstream model id.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from typing import cast

import orjson

_ANSWER_TOKENS = 50  # about the length of a simulator proposer's answer
_WORDS = [f"word{i} " for i in range(_ANSWER_TOKENS)]
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CONNECTION_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
_USAGE = {"prompt_tokens": 10, "completion_tokens": _ANSWER_TOKENS, "total_tokens": 10 + _ANSWER_TOKENS}


def _http(status: str, content_type: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (
        status.encode(),
        content_type,
        len(body),
    )
    return head + body


def _completion() -> bytes:
    body = {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(_WORDS).rstrip()},
                "finish_reason": "stop",
            }
        ],
        "usage": _USAGE,
    }
    return _http("200 OK", b"application/json", orjson.dumps(body))


def _stream(include_usage: bool) -> bytes:
    """One HTTP chunk per SSE event, all written at once, as a fast server's stream arrives."""
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = "stub"

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": word}) for word in _WORDS]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append({**base, "choices": [], "usage": _USAGE})
    frames = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(f), f) for f in frames) + b"0\r\n\r\n"


_JSON_REPLY = _completion()
_STREAM_REPLY = _stream(include_usage=False)
_STREAM_USAGE_REPLY = _stream(include_usage=True)
_HEALTH_REPLY = _http("200 OK", b"application/json", b'{"status":"ok"}')
_NOT_FOUND = _http("404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')


class Delays:
    """Seconds before an answer, by upstream model id."""

    def __init__(self, default_s: float = 0.0, by_model: dict[bytes, float] | None = None) -> None:
        self.default_s = default_s
        self.by_model = by_model or {}

    def of(self, body: bytes) -> float:
        if not self.by_model:
            return self.default_s
        match = _MODEL.search(body)
        return self.by_model.get(match.group(1), self.default_s) if match else self.default_s


class _Connection(asyncio.Protocol):
    """Parses pipelined HTTP/1.1 requests with a content-length body (what httpx, aiohttp and wrk send)."""

    delays = Delays()

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._pending = 0  # delayed answers not sent yet: a pipelined request's answer waits for them

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self._buffer[:head_end])
            match = _CONTENT_LENGTH.search(head)
            end = head_end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < end:
                return
            body = bytes(self._buffer[head_end + 4 : end])
            del self._buffer[:end]
            close = bool(_CONNECTION_CLOSE.search(head))
            delay_s = self.delays.of(body) if head.startswith(b"POST ") else 0.0
            if delay_s > 0 or self._pending:
                # Clients send one request at a time per connection: answers keep their order.
                self._pending += 1
                loop = asyncio.get_running_loop()
                loop.call_later(delay_s, self._send_later, _reply(head, body), close)
                continue
            self._transport.write(_reply(head, body))
            if close:
                self._transport.close()
                self._transport = None

    def _send_later(self, reply: bytes, close: bool) -> None:
        self._pending -= 1
        if self._transport is None:
            return  # the client went away meanwhile
        self._transport.write(reply)
        if close:
            self._transport.close()
            self._transport = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _reply(head: bytes, body: bytes) -> bytes:
    if head.startswith(b"POST ") and b"/chat/completions " in head[:100]:
        if _STREAM.search(body):
            return _STREAM_USAGE_REPLY if _INCLUDE_USAGE.search(body) else _STREAM_REPLY
        return _JSON_REPLY
    if head.startswith(b"GET /healthz "):
        return _HEALTH_REPLY
    return _NOT_FOUND


async def serve(host: str, port: int) -> None:
    """Serve until cancelled."""
    server = await asyncio.get_running_loop().create_server(_Connection, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="answer this long after a request")
    parser.add_argument(
        "--delay", action="append", default=[], metavar="MODEL=MS", help="the delay for one model id"
    )
    args = parser.parse_args()
    by_model = {}
    for item in args.delay:
        model, _, ms = item.partition("=")
        by_model[model.encode()] = float(ms) / 1000
    _Connection.delays = Delays(args.delay_ms / 1000, by_model)
    try:
        import uvloop
    except ImportError:  # the plain asyncio loop works too, a little slower
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
