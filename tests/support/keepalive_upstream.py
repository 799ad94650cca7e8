"""A raw upstream that keeps its connections open, so a test can see how a client reuses them: an asyncio
TCP server (TLS when given a context) on 127.0.0.1, on its own event loop in a background thread. Each
request on a connection is read whole (head and content-length body) and answered with the bytes
`answer(request_number)` returns; it records every connection and the requests each carried."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from types import TracebackType


class Reply:
    """The bytes to send for one request, and whether to close the connection after them."""

    def __init__(self, data: bytes, *, close: bool = False, pieces: int = 1) -> None:
        self.data, self.close, self.pieces = data, close, pieces


class KeepAliveUpstream:
    def __init__(self, answer: Callable[[int], Reply], context: ssl.SSLContext | None = None) -> None:
        self._answer = answer
        self._context = context
        self.requests_per_connection: list[int] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://localhost:{self.port}/v1"

    def __enter__(self) -> KeepAliveUpstream:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.requests_per_connection)
        self.requests_per_connection.append(0)
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests_per_connection[index] += 1
                reply = self._answer(sum(self.requests_per_connection))
                step = max(1, len(reply.data) // reply.pieces)
                for start in range(0, len(reply.data), step):
                    writer.write(reply.data[start : start + step])
                    await writer.drain()
                    if reply.pieces > 1:
                        await asyncio.sleep(0.01)
                if reply.close:
                    return
        finally:
            self._writers.discard(writer)
            writer.close()
