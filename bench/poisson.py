"""An open-loop HTTP load generator: POSTs arrive at Poisson times at a set rate, whatever the answers'
latency, each on a keep-alive connection of its own while it is in flight (a new one when none is idle).

A closed-loop generator (wrk) sends a request only when one of its c connections is free, so requests
arrive in cohorts synchronised by the answers and a slow answer delays the next arrivals (coordinated
omission). Here an arrival never waits for an answer, and each latency is measured from the time the
request was due, not from when it left, so a generator that falls behind shows up in the latencies and
in its own lag figure instead of hiding. Raw asyncio protocols on uvloop: about 10x less CPU per request
than an aiohttp client, so one process keeps up with ~1000 req/s; its CPU is reported with the results.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


@dataclass
class Outcome:
    """What the generator saw, for the requests due inside the measured window."""

    latencies_s: list[float] = field(default_factory=list)  # due time -> last byte, 2xx answers only
    lags_s: list[float] = field(default_factory=list)  # due time -> request written
    status_errors: int = 0  # answers with a status >= 400
    socket_errors: int = 0  # refused or dropped connections, and timeouts
    sent: int = 0
    completed_in_window: int = 0  # answers (any status) that arrived inside the window, for CPU per request
    connections: int = 0  # opened over the whole run


class _Exchange(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; reads a content-length or chunked answer."""

    def __init__(self, on_idle: Callable[[_Exchange], None], on_lost: Callable[[_Exchange], None]) -> None:
        self._on_idle, self._on_lost = on_idle, on_lost
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._done: Callable[[int], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes, done: Callable[[int], None]) -> None:
        """Write `request`; `done(status)` is called with the answer's status, or 0 if the connection fails."""
        assert self._transport is not None
        self._done = done
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        head_end = self._buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = bytes(self._buffer[:head_end])
        match = _CONTENT_LENGTH.search(head)
        if match is not None:
            complete = len(self._buffer) >= head_end + 4 + int(match.group(1))
        elif _CHUNKED.search(head):
            complete = self._buffer.endswith(b"\r\n0\r\n\r\n") or self._buffer.endswith(b"\n0\r\n\r\n")
        else:
            complete = False  # read to the end of the connection
        if not complete:
            return
        self._buffer.clear()
        done, self._done = self._done, None
        if _CLOSE.search(head) and self._transport is not None:
            self._transport.close()
            self._transport = None
        if done is not None:
            done(int(head[9:12]))
        if self._transport is not None:
            self._on_idle(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._on_lost(self)
        done, self._done = self._done, None
        if done is not None:
            done(0)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def generate(
    host: str,
    port: int,
    request: bytes,
    rate: float,
    duration_s: float,
    warmup_s: float,
    timeout_s: float,
    on_window: Callable[[str], None],
    seed: int = 1,
) -> Outcome:
    """Send `request` at Poisson arrivals of `rate` per second for `warmup_s + duration_s`, then wait for
    the answers (at most `timeout_s` each). Only requests due in the last `duration_s` count;
    `on_window("start")` and `on_window("end")` are called at the window's edges (CPU samples)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    out = Outcome()
    idle: list[_Exchange] = []
    live: set[_Exchange] = set()
    pending: set[asyncio.Task[None]] = set()
    started = loop.time()
    window_start, window_end = started + warmup_s, started + warmup_s + duration_s
    window_open = False

    def lost(exchange: _Exchange) -> None:
        live.discard(exchange)
        if exchange in idle:
            idle.remove(exchange)

    async def one(due: float) -> None:
        counted = due >= window_start
        if idle:
            exchange = idle.pop()
        else:
            try:
                _, proto = await loop.create_connection(lambda: _Exchange(idle.append, lost), host, port)
            except OSError:
                out.socket_errors += counted
                return
            exchange = proto
            live.add(exchange)
            out.connections += 1
        answered: asyncio.Future[int] = loop.create_future()

        def done(status: int) -> None:
            if not answered.done():
                answered.set_result(status)

        exchange.send(request, done)
        if counted:
            out.sent += 1
            out.lags_s.append(loop.time() - due)
        try:
            status = await asyncio.wait_for(answered, timeout_s)
        except TimeoutError:
            exchange.abort()
            status = 0
        if window_open:
            out.completed_in_window += 1
        if not counted:
            return
        if status == 0:
            out.socket_errors += 1
        elif status >= 400:
            out.status_errors += 1
        else:
            out.latencies_s.append(loop.time() - due)

    due = started
    while True:
        due += rng.expovariate(rate)
        if due >= window_end:
            break
        if not window_open and due >= window_start:
            window_open = True
            on_window("start")
        wait = due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        task = loop.create_task(one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.sleep(max(0.0, window_end - loop.time()))
    window_open = False
    on_window("end")
    if pending:
        await asyncio.wait(pending)
    for exchange in list(live):
        exchange.abort()
    return out


def process_cpu_s() -> float:
    """This process's CPU seconds (user + system), for the generator's own cost."""
    return time.process_time()
