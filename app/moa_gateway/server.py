"""The uvicorn server setup, in one place for `moa-gateway serve` and the e2e tests, and an HTTP protocol
that bounds what a hostile client can hold: a request head's size and time, and a request body's time.

`GuardedHttpToolsProtocol` extends uvicorn's httptools protocol and relies on its internals (the parser
callbacks, `cycle`, `pipeline`, `server_state`): tested with uvicorn 0.30, 0.40 and 0.54, hence the pin
in pyproject.toml.
httptools has no limit of its own and gathers a header's value in memory before reporting it, so the
head is bounded by feeding the parser no more than what is left of `max_header_bytes`.
"""

from __future__ import annotations

import asyncio
import http
import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from moa_gateway.api.record import record_of
from moa_gateway.settings import Settings
from moa_gateway.wire.errors import error_body


@dataclass(frozen=True)
class ClientLimits:
    """What one client connection may take: the head's bytes and seconds, the body's seconds."""

    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 20.0
    body_timeout_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        return cls(settings.max_header_bytes, settings.header_timeout_s, settings.body_timeout_s)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with three limits (uvicorn has none of them):

    - a head (request line and headers) over `max_header_bytes`: 431, and the connection is closed;
    - a head not complete `header_timeout_s` after the connection opened, or after the first byte of a
      later request on it: the connection is closed;
    - a body not complete `body_timeout_s` after its head: 408 if nothing was answered yet, and the
      connection is closed.

    Idle keep-alive between requests stays uvicorn's `timeout_keep_alive`. Use `protocol_class(limits)`.
    """

    limits = ClientLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_open = True  # the next bytes are a request head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_head_timer()  # a client that connects and sends nothing is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while data and not self.transport.is_closing():
            if not self._head_open:
                # A body, and whatever follows it in this read. A pipelined head that starts inside it
                # is counted from the next read on: at most one read (256 KiB) beyond the limit.
                super().data_received(data)
                return
            self._start_head_timer()
            budget = self.limits.max_header_bytes - self._head_bytes
            piece, data = (data, b"") if len(data) <= budget else (data[:budget], data[budget:])
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self._head_open and self._head_bytes >= self.limits.max_header_bytes:
                # `max_header_bytes` read and the head still goes on: refuse before the parser holds more
                message = f"The request line and headers are larger than {self.limits.max_header_bytes} bytes"
                self._close(431, message, "request_header_fields_too_large", answer=not self._answering())
                return

    # Parser callbacks, called from `data_received`
    def on_message_begin(self) -> None:
        self._start_head_timer()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._cancel_timers()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()
        if self.cycle is not None:  # the request's own cycle, running or queued behind another
            self.cycle.transport = cast(asyncio.Transport, HeadTurnWrites(self.transport, self.loop))

    def on_message_complete(self) -> None:
        self._cancel_timers()
        self._head_open = True
        self._head_bytes = 0
        super().on_message_complete()

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _answering(self) -> bool:
        """A response to an earlier request on this connection is still being sent."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._answering():
            self.cycle.keep_alive = False  # finish that answer, then close
        else:
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing():
            return
        if self.pipeline:  # queued behind an answer in progress, with reading paused: wait for it
            self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)
        elif cycle.response_complete:  # answered without reading the body: stop waiting for it
            self.transport.close()
        elif cycle.response_started:
            cycle.keep_alive = False
        else:
            # The app is still waiting on the body: tell it the client is gone, and the client why.
            record_of(cast(Scope, cycle.scope)).status = 408  # what ChatMetricsMiddleware records
            cycle.disconnected = True
            cycle.message_event.set()
            request_id = cycle.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
            self._close(
                408,
                "The request body did not arrive in time",
                "request_timeout",
                answer=True,
                request_id=request_id,
            )

    def _close(
        self, status: int, message: str, code: str, answer: bool, request_id: str | None = None
    ) -> None:
        """Close the connection, after answering `status` in OpenAI's error shape if `answer`, with the
        request's id (a new one when the head never arrived) like every other error response."""
        if answer:
            body = orjson.dumps(error_body(message, "invalid_request_error", code=code))
            head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head.append(
                b"content-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\nx-should-retry: false\r\nx-request-id: %s\r\n\r\n"
                % (len(body), (request_id or uuid.uuid4().hex).encode())
            )
            self.transport.write(b"".join(head) + body)
        self._cancel_timers()
        self.transport.close()


class HeadTurnWrites:
    """The transport as one response sees it: what the response writes in the turn of the event loop
    that writes its head goes out in one write at the end of that turn; later writes go straight
    through. uvicorn writes a head on `http.response.start` and each body message apart: a JSON answer's
    head and body, or a stream's head, role chunk and first token (ready together), then reach the
    client in one segment, read at once. A 100 Continue goes out at once."""

    __slots__ = ("_held", "_loop", "_through", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._through = False

    def write(self, data: bytes) -> None:
        if self._through or data.startswith(b"HTTP/1.1 100 "):
            self._transport.write(data)
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        self._through = True
        if self._held:
            held, self._held = self._held, []
            if not self._transport.is_closing():
                self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info...: the transport's own
        return getattr(self._transport, name)


def protocol_class(limits: ClientLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class carrying `limits`: uvicorn instantiates the class itself, once per connection."""

    class ConfiguredProtocol(GuardedHttpToolsProtocol):
        pass

    ConfiguredProtocol.limits = limits
    return ConfiguredProtocol


def uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """The one uvicorn configuration of the gateway, for `moa-gateway serve` and the e2e tests."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(ClientLimits.from_settings(settings)),
        ws="none",  # no WebSocket routes: an upgrade request is an ordinary request
        lifespan="on",  # a lifespan that fails stops the start ("auto" would serve without it)
        log_level=settings.log_level,
        log_config=None,  # moa_gateway.telemetry.logs configures logging
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        timeout_keep_alive=settings.keep_alive_s,
    )
