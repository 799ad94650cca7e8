"""The default upstream client: keep-alive HTTP/1.1 connections on the event loop's own transports, each
answer parsed by httptools (llhttp, Node.js's parser, which uvicorn serves the gateway with).

A MoA 3+1 request makes four upstream calls, so the client's cost per call counts four times: this one
spends about a third of the CPU of an aiohttp session per call (bench/upstream_client.py), because it does
only what the gateway asks of a client. Each endpoint POSTs to one URL; connections are direct (plain or
TLS), kept per origin and reused newest first; no redirects, cookies, decompression (upstream/body.py
inflates in bounded steps) or connection cap (the gateway's own pool, upstream/pool.py, holds every call
to its total). An endpoint whose URL the environment sends through a proxy is aiohttp's instead.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator

import httptools
import httpx
from yarl import URL

from moa_gateway.upstream.aiohttp_client import AiohttpClient, env_proxy
from moa_gateway.upstream.client import (
    KEEPALIVE_EXPIRY_S,
    ClientError,
    ConnectError,
    Endpoint,
    ProtocolError,
    content_codings,
)

MAX_HEAD_BYTES = 64 * 1024  # a response head (status line and headers) longer than this is refused
_PAUSE_BYTES = 256 * 1024  # body bytes read ahead of the consumer before reading from the socket pauses
_RESUME_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
_FORBIDDEN_IN_HEADERS = str.maketrans("", "", "\r\n\0")

Origin = tuple[str, str, int]  # scheme, host, port


class HttptoolsClient:
    def __init__(self, max_connections: int) -> None:
        self._idle: dict[Origin, dict[_Connection, float]] = {}  # idle since (monotonic), newest last
        self._open: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None
        self._proxied = AiohttpClient(max_connections)  # made lazily: only proxied endpoints use it
        self._closed = False

    def endpoint(self, url: str, headers: dict[str, str], *, connect_s: float, read_s: float) -> Endpoint:
        parsed = URL(url)
        if env_proxy(parsed) is not None:
            return self._proxied.endpoint(url, headers, connect_s=connect_s, read_s=read_s)
        return HttptoolsEndpoint(self, parsed, headers, connect_s)

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()
        await self._proxied.aclose()

    async def connection(self, origin: Origin, connect_s: float) -> _Connection:
        """An idle connection to `origin` that is still open and fresh, else a new one."""
        if self._closed:
            raise RuntimeError("the upstream client is closed")
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection, since = idle.popitem()
            if now - since < KEEPALIVE_EXPIRY_S and connection.usable:
                return connection
            connection.abort()
        return await self._connect(origin, connect_s)

    def release(self, origin: Origin, connection: _Connection) -> None:
        """`connection` has carried a whole answer and may carry the next call's."""
        if self._closed or not connection.usable:
            connection.abort()
            return
        self._idle.setdefault(origin, {})[connection] = time.monotonic()

    def forget(self, origin: Origin, connection: _Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(origin)
        if idle is not None:
            idle.pop(connection, None)

    async def _connect(self, origin: Origin, connect_s: float) -> _Connection:
        scheme, host, port = origin
        context = self._ssl_context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                )
        except TimeoutError:
            raise ConnectError(
                f"cannot connect to {host}:{port}: no connection within {connect_s:g}s"
            ) from None
        except OSError as exc:  # refused, unreachable, a name that does not resolve, a TLS failure
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        self._open.add(connection)
        return connection

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()  # the same trust store as the other clients
        return self._ssl


class HttptoolsEndpoint:
    def __init__(self, client: HttptoolsClient, url: URL, headers: dict[str, str], connect_s: float) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {url}")
        port = url.port or (443 if url.scheme == "https" else 80)
        self._client = client
        self._origin: Origin = (url.scheme, url.host, port)
        self._connect_s = connect_s
        authority = url.raw_host if ":" not in (url.raw_host or "") else f"[{url.raw_host}]"
        if url.explicit_port is not None:
            authority = f"{authority}:{url.explicit_port}"
        lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"host: {authority}"]
        lines += [_header_line(name, value) for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode()

    async def post(self, content: bytes, headers: list[tuple[str, str]]) -> HttptoolsResponse:
        extra = "".join(_header_line(name, value) + "\r\n" for name, value in headers)
        request = b"%s%scontent-length: %d\r\n\r\n" % (self._head, extra.encode(), len(content))
        connection = await self._client.connection(self._origin, self._connect_s)
        return await connection.send(request, content)


def _header_line(name: str, value: str) -> str:
    """`name: value`, with CR, LF and NUL dropped: no value can end the head or add a header."""
    return f"{name.translate(_FORBIDDEN_IN_HEADERS)}: {value.translate(_FORBIDDEN_IN_HEADERS)}"


class HttptoolsResponse:
    """One answer on one connection: its head, and its body as the connection reads it."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status_code = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.error: ClientError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self._closed = False

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def encodings(self) -> list[str]:
        values = [
            value.decode("latin-1") for key, value in self.headers if key.lower() == b"content-encoding"
        ]
        return content_codings(values)

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        chunks = self.chunks
        while True:
            if chunks:
                chunk = chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered < _RESUME_BYTES:
                    self._connection.resume()
                yield chunk
            elif self.error is not None:
                raise self.error
            elif self.complete:
                return
            else:
                self.waiter = asyncio.get_running_loop().create_future()
                try:
                    await self.waiter
                finally:
                    self.waiter = None

    def aiter_decoded(self) -> AsyncIterator[bytes]:
        return self.aiter_raw()  # nothing decoded: an encoding the gateway does not inflate stays as sent

    async def aclose(self) -> None:
        """The connection goes back to the pool if the answer was read to its end, else it is closed."""
        if not self._closed:
            self._closed = True
            self._connection.done(reusable=self.complete and self.error is None)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, carrying one call at a time; httptools calls its `on_*` methods."""

    def __init__(self, client: HttptoolsClient, origin: Origin) -> None:
        self._client = client
        self._origin = origin
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._response: HttptoolsResponse | None = None
        self._head: asyncio.Future[HttptoolsResponse] | None = None
        self._head_bytes = 0  # read while the current head is incomplete
        self._interim = False  # the message being parsed is a 1xx: its head is not the answer's
        self._until_eof = False  # the answer's body has no length: it ends when the connection does
        self._keep_alive = True
        self._paused = False

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing() and self._keep_alive

    async def send(self, request: bytes, content: bytes) -> HttptoolsResponse:
        """Write the request; returns once the answer's head has arrived. Cancelled or failed before
        that, the connection is closed: its state is unknown."""
        transport = self._transport
        if transport is None:
            raise ConnectError("the connection was closed")
        response = self._response = HttptoolsResponse(self)
        head = self._head = asyncio.get_running_loop().create_future()
        self._head_bytes = 0
        transport.write(request + content)
        try:
            await head
        except BaseException:
            self.abort()
            raise
        return response

    def done(self, *, reusable: bool) -> None:
        self._response = None
        if reusable and self._keep_alive:
            self._client.release(self._origin, self)
        else:
            self.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()  # connection_lost follows, and forgets it
        self._keep_alive = False

    def resume(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._response is None:  # bytes nobody asked for: the connection cannot carry another call
            self.abort()
            return
        head = self._head
        head_pending = head is not None and not head.done()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError if head_pending else ClientError, f"malformed HTTP ({exc})")
            self.abort()
            return
        if head is not None and head_pending and not head.done():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(ProtocolError, f"the response head is over {MAX_HEAD_BYTES} bytes")
                self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._keep_alive = False
        self._client.forget(self._origin, self)
        response = self._response
        if response is not None and self._until_eof and self._head is not None and self._head.done():
            response.complete = True  # a body without a length ends with its connection
            response.wake()
            return
        reason = f"the connection was closed ({exc})" if exc else "the server closed the connection"
        head = self._head
        self._fail(ConnectError if head is not None and not head.done() else ClientError, reason)

    def pause_reading_if_behind(self, response: HttptoolsResponse) -> None:
        if response.buffered > _PAUSE_BYTES and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _fail(self, kind: type[ClientError], reason: str) -> None:
        head, response = self._head, self._response
        if head is not None and not head.done():
            head.set_exception(kind(reason))
        elif response is not None and not response.complete and response.error is None:
            response.error = kind(reason)
            response.wake()

    # httptools callbacks

    def on_message_begin(self) -> None:
        response = self._response
        if response is None or response.complete:  # bytes after the answer: no other call may follow
            self._keep_alive = False
        else:
            response.headers = []  # an interim (1xx) head's are not the answer's
        self._interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self._response
        if response is not None and not response.complete:
            response.headers.append((name, value))

    def on_headers_complete(self) -> None:
        response, head = self._response, self._head
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: the answer's head comes next
            self._interim = True
            return
        if response is None or head is None or head.done():
            return
        response.status_code = status
        self._keep_alive = self._parser.should_keep_alive()
        delimited = status in _NO_BODY_STATUSES or any(
            key.lower() in (b"content-length", b"transfer-encoding") for key, _ in response.headers
        )
        self._until_eof = not delimited
        head.set_result(response)

    def on_body(self, body: bytes) -> None:
        response = self._response
        if response is None or response.complete:
            return
        response.chunks.append(body)
        response.buffered += len(body)
        self.pause_reading_if_behind(response)
        response.wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        response = self._response
        if response is not None and not response.complete:
            response.complete = True
            response.wake()
