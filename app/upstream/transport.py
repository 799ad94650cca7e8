"""The wire-level protocol every provider type implements, and the stream deadlines they share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Transport(Protocol):
    async def complete(self, alias: str, body: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` object; raises UpstreamError naming `alias` on failure."""
        ...

    def stream(self, alias: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` objects until the upstream's `[DONE]`."""
        ...


class ChunkTimeoutError(TimeoutError):
    """A stream was too slow; the message says what it was waiting for."""


async def paced(source: AsyncIterator[T], first_s: float, idle_s: float) -> AsyncIterator[T]:
    """The items of `source`, failing if the first takes over `first_s` or any later gap over `idle_s`.

    Each deadline covers one `anext` only, never a `yield`: the consumer's time is not the upstream's.
    """
    limit_s, waiting_for = first_s, "first chunk"
    while True:
        try:
            async with asyncio.timeout(limit_s):
                item = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise ChunkTimeoutError(f"no {waiting_for} within {limit_s:g}s") from None
        limit_s, waiting_for = idle_s, "next chunk"
        yield item
