"""The wire-level protocol every provider type implements, and the deadlines and end checks its streams
share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import TraceContext
from moa_gateway.upstream.failures import upstream_error

T = TypeVar("T")


class Transport(Protocol):
    """Every method sends `trace` (the call's trace context, from the observer) with the request, where
    its wire has headers."""

    async def complete(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        """A `chat.completion` object for the encoded request `content`; raises Failure naming
        `alias` on failure."""
        ...

    async def embed(self, alias: str, content: bytes, trace: TraceContext | None = None) -> dict[str, Any]:
        """An embeddings `list` object for the encoded request `content`; raises Failure naming `alias`."""
        ...

    def stream(
        self, alias: str, content: bytes, trace: TraceContext | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """`chat.completion.chunk` objects until the upstream's `[DONE]` (or its end after a
        `finish_reason`); a stream cut short before either raises a `mid_stream` Failure."""
        ...


class ChunkTimeoutError(TimeoutError):
    """A stream was too slow; the message says what it was waiting for."""


@dataclass(frozen=True)
class CallDeadline:
    """When a whole call must be over (event-loop time), and the provider's `timeout_s` it comes from."""

    at: float
    total_s: float

    @classmethod
    def start(cls, total_s: float) -> CallDeadline:
        return cls(asyncio.get_running_loop().time() + total_s, total_s)

    def wait(self, limit_s: float, what: str) -> tuple[float, str]:
        """How long to wait for something itself limited to `limit_s`, and what to say if it does not
        come: the call's deadline wins once it is nearer."""
        left_s = self.at - asyncio.get_running_loop().time()
        if left_s < limit_s:
            return max(left_s, 0.0), self.late()
        return limit_s, what

    def late(self) -> str:
        return f"no complete answer within {self.total_s:g}s"


class _Pacer:
    """The timer of one paced stream: armed once and moved only when it fires, not per chunk (an
    `asyncio.timeout` around each `anext` cost 4 us a chunk on uvloop, ~5% of a streamed request). When
    it fires while the stream waits past its limit, it cancels the waiting task, as `asyncio.timeout`
    does; while the consumer has the item (a `yield`), it does nothing."""

    __slots__ = ("_handle", "_loop", "deadline", "fired", "task", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[Any] | None = None
        self.deadline = 0.0
        self.waiting = False
        self.fired = False

    def wait_until(self, deadline: float) -> None:
        self.task, self.deadline, self.waiting = asyncio.current_task(), deadline, True
        if self._handle is None or self._handle.when() > deadline:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._handle = None
        if not self.waiting or self.task is None:
            return  # the next wait arms it again
        if self._loop.time() < self.deadline:
            self._handle = self._loop.call_at(self.deadline, self._check)
            return
        self.fired = True
        self.task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


async def paced(
    source: AsyncIterator[T], first_s: float, idle_s: float, deadline: CallDeadline | None = None
) -> AsyncIterator[T]:
    """The items of `source`, failing if the first takes over `first_s`, any later gap over `idle_s`, or
    the whole over `deadline` (so a stream that trickles forever, each gap short, still ends).

    Each deadline covers one `anext` only, never a `yield`: the consumer's time is not the upstream's.
    """
    limit_s, waiting_for = first_s, "first chunk"
    loop = asyncio.get_running_loop()
    pacer = _Pacer(loop)
    try:
        while True:
            wait_s = limit_s
            if deadline is not None:  # the call's deadline wins once it is nearer
                wait_s = min(limit_s, max(deadline.at - loop.time(), 0.0))
            task = asyncio.current_task()
            cancelling = task.cancelling() if task is not None else 0
            pacer.wait_until(loop.time() + wait_s)
            try:
                item = await anext(source)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Ours only if the pacer cancelled and nobody else did meanwhile (asyncio.Timeout's rule).
                if not pacer.fired or task is None or task.uncancel() > cancelling:
                    raise
                # The message is made only here: formatting it for every chunk cost ~5% of a stream's CPU.
                what = f"no {waiting_for} within {limit_s:g}s"
                if wait_s < limit_s and deadline is not None:
                    what = deadline.late()
                raise ChunkTimeoutError(what) from None
            finally:
                pacer.waiting = False
            if pacer.fired and task is not None:  # fired as the item came: as asyncio.Timeout, no error
                pacer.fired = False
                task.uncancel()
            limit_s, waiting_for = idle_s, "next chunk"
            yield item
    finally:
        pacer.stop()


def has_finish_reason(chunk: dict[str, Any]) -> bool:
    """Does this chunk end a choice? A stream that stops before any did, and without `[DONE]`, was cut."""
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, dict) and choice.get("finish_reason") for choice in choices
    )


def truncated_stream(alias: str) -> Failure:
    """The failure of a stream that ended before a `finish_reason` and without `[DONE]`."""
    return upstream_error(
        f"model {alias}: the stream ended before the answer was complete (no finish_reason, no [DONE])",
        model=alias,
        kind=FailureKind.MID_STREAM,
    )
