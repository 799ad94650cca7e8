"""A raw upstream that keeps its connections open, so a test can see how a client reuses them (TLS when
given a context). Each request on a connection is read whole and answered with the bytes
`answer(request_number)` returns; it records every connection and the requests each carried."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from tests.support.loop_server import LoopServer, read_request_body


class Reply:
    """The bytes to send for one request, and whether to close the connection after them."""

    def __init__(self, data: bytes, *, close: bool = False, pieces: int = 1) -> None:
        self.data, self.close, self.pieces = data, close, pieces


class KeepAliveUpstream(LoopServer):
    def __init__(self, answer: Callable[[int], Reply], context: ssl.SSLContext | None = None) -> None:
        super().__init__(context)
        self._answer = answer
        self.requests_per_connection: list[int] = []

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://localhost:{self.port}/v1"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(self.requests_per_connection)
        self.requests_per_connection.append(0)
        while not reader.at_eof():
            try:
                await read_request_body(reader)
            except asyncio.IncompleteReadError:
                return  # the client closed the connection between requests
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
