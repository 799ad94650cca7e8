"""Server-sent events: frame encoding, and a keep-alive ticker over a slow async source, timed from the
last bytes the client was sent."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final, TypeVar

import orjson

T = TypeVar("T")

DONE: Final = b"data: [DONE]\n\n"
KEEPALIVE_COMMENT: Final = b": keep-alive\n\n"


class KeepAlive:
    """Yielded by `with_keepalive` when the source was quiet for one interval."""


KEEPALIVE: Final = KeepAlive()


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class SendClock:
    """When the client was last sent bytes (or the stream began): the keep-alive timer runs from it. The
    run's inner events (layers, calls) reach the ticker but not, unless asked for, the client: were they
    to restart the timer, a client could wait several intervals for its first byte. The response that
    writes the frames calls `sent()` after each write."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = time.monotonic()

    def sent(self) -> None:
        self.last = time.monotonic()


class _End:
    pass


async def with_keepalive(
    source: AsyncGenerator[T, None],
    interval_s: float,
    clock: SendClock,
    first: Callable[[T], bool] | None = None,
) -> AsyncGenerator[list[T] | KeepAlive, None]:
    """The items of `source` in batches: each batch holds every item that was ready, so a fast upstream
    costs one write per batch rather than per token, and a slow one still goes out item by item. Yields
    KEEPALIVE whenever the client was sent nothing for `interval_s` by `clock` (items that made no bytes
    do not count), and at most one per interval while a keep-alive waits to be written.

    The first item for which `first` holds (the first token) is not batched with what follows: the
    source waits until the consumer has handled the batch that holds it (asked for the next one) before
    it goes on. A burst (an upstream that sent its whole answer at once) otherwise held the first token
    back until every item of it had gone through the run, ~2 ms for a 50-token answer.

    The source runs in one task of its own, so its timeouts and task groups stay in one task; closing
    this iterator (a client disconnect) cancels that task, which closes the source and with it every
    upstream call.
    """
    queue: asyncio.Queue[T | _End | BaseException] = asyncio.Queue(maxsize=256)
    handled = asyncio.Event()  # set each time the consumer asks for the batch after the one it had

    async def pump() -> None:
        waiting_for_first = first is not None
        try:
            async with contextlib.aclosing(source):  # closed in this task, however the pump ends
                async for item in source:
                    if waiting_for_first and first is not None and first(item):
                        waiting_for_first = False
                        handled.clear()
                        await queue.put(item)
                        await handled.wait()
                        continue
                    await queue.put(item)
        except Exception as exc:  # handed to the consumer, who raises it
            await queue.put(exc)
        else:
            await queue.put(_End())

    task = asyncio.create_task(pump())
    ticked = -math.inf  # when the last KEEPALIVE was handed out
    try:
        while True:
            wait_s = max(clock.last, ticked) + interval_s - time.monotonic()
            if wait_s <= 0:  # due, even while items the client does not see keep coming
                ticked = time.monotonic()
                yield KEEPALIVE
                continue
            if queue.empty():
                try:
                    async with asyncio.timeout(wait_s):  # unlike wait_for, no task per wait
                        ready = [await queue.get()]
                except TimeoutError:
                    continue  # the keep-alive is due: yielded above
            else:
                ready = []
            while not queue.empty():
                ready.append(queue.get_nowait())
            batch: list[T] = []
            for item in ready:
                if isinstance(item, _End | BaseException):
                    if batch:
                        yield batch
                    if isinstance(item, BaseException):
                        raise item
                    return
                batch.append(item)
            yield batch
            handled.set()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
