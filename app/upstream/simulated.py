"""Provider `type: simulated`: the simulator called in-process, with the same wire dicts as HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from app.config import SimulatedProvider
from app.errors import UpstreamRejectedError, UpstreamTimeoutError
from app.upstream.simulator import core


class SimulatedTransport:
    def __init__(self, provider: SimulatedProvider) -> None:
        self._defaults = core.SimProfile(provider.ttft_ms, provider.tokens_per_s)
        self._timeout_s = provider.timeout_s

    async def complete(self, alias: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await core.complete(body, self._defaults)
        except core.SimulatorRequestError as exc:
            raise UpstreamRejectedError(f"model {alias}: {exc}", model=alias) from None
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"model {alias}: no answer within {self._timeout_s:g}s", model=alias
            ) from None

    async def stream(self, alias: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        try:
            async for chunk in core.stream(body, self._defaults):
                yield chunk
        except core.SimulatorRequestError as exc:
            raise UpstreamRejectedError(f"model {alias}: {exc}", model=alias) from None
