"""The wire-level protocol every provider type implements: OpenAI request dicts in, response dicts out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol


class Transport(Protocol):
    async def complete(self, alias: str, body: dict[str, Any]) -> dict[str, Any]:
        """A `chat.completion` object; raises UpstreamError naming `alias` on failure."""
        ...

    def stream(self, alias: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`chat.completion.chunk` objects until the upstream's `[DONE]`."""
        ...
