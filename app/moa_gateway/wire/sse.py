"""Server-sent events: frame encoding, and a keep-alive ticker over a slow async source."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
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


class _End:
    pass


async def with_keepalive(
    source: AsyncGenerator[T, None], interval_s: float
) -> AsyncGenerator[list[T] | KeepAlive, None]:
    """The items of `source` in batches: each batch holds every item that was ready, so a fast upstream
    costs one write per batch rather than per token, and a slow one still goes out item by item. Yields
    KEEPALIVE whenever nothing came for `interval_s`.

    The source runs in one task of its own, so its timeouts and task groups stay in one task; closing
    this iterator (a client disconnect) cancels that task, which closes the source and with it every
    upstream call.
    """
    queue: asyncio.Queue[T | _End | BaseException] = asyncio.Queue(maxsize=256)

    async def pump() -> None:
        try:
            async with contextlib.aclosing(source):  # closed in this task, however the pump ends
                async for item in source:
                    await queue.put(item)
        except Exception as exc:  # handed to the consumer, who raises it
            await queue.put(exc)
        else:
            await queue.put(_End())

    task = asyncio.create_task(pump())
    try:
        while True:
            if queue.empty():
                try:
                    async with asyncio.timeout(interval_s):  # unlike wait_for, no task per wait
                        ready = [await queue.get()]
                except TimeoutError:
                    yield KEEPALIVE
                    continue
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
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
