"""Error responses sent by middleware, in OpenAI's error shape with the retry advice of every error,
before any route runs; and a `send` that notes the status a response started with."""

from __future__ import annotations

import orjson
from starlette.types import Message, Send

from moa_gateway.wire.errors import error_body, retry_headers


async def send_error(
    send: Send,
    status: int,
    message: str,
    error_type: str,
    code: str | None,
    headers: dict[str, str] | None = None,
) -> None:
    body = orjson.dumps(error_body(message, error_type, code=code))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    all_headers = {**retry_headers(status), **(headers or {})}
    raw_headers += [(k.encode(), v.encode()) for k, v in all_headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class StatusNoted:
    """`send`, noting the status the response started with: `code` is 500 until one was sent (a
    request whose app raised before answering is counted as the 500 the error boundary sends)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.code = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        await self._send(message)
