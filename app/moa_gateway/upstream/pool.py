"""The upstream connection pool's size and its gateway-side accounting: a total per worker and an optional
cap per provider, each call holding one connection (HTTP/1.1) from its request to the end of its answer.

By default the total is derived from the config at start-up so that admission
(`MOA_MAX_CONCURRENT_REQUESTS`), never a hidden queue for connections, limits a worker: every admitted
request can hold a connection for each call of its widest layer at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from moa_gateway.config import GatewayConfig

logger = logging.getLogger(__name__)


class PoolObserver(Protocol):
    """Told when a call gets a connection (after waiting `wait_s` for it) and when it gives it back."""

    def connection_acquired(self, provider: str, wait_s: float) -> None: ...

    def connection_released(self, provider: str) -> None: ...


@dataclass(frozen=True)
class PoolSize:
    """Connections one worker may hold: `total` across providers, `per_provider` caps where configured."""

    total: int
    per_provider: dict[str, int] = field(default_factory=dict)


def widest_fan_out(config: GatewayConfig, max_proposers: int) -> int:
    """Upstream calls one request may have in flight at once: its widest layer, whether a pipeline's or a
    request's own `moa.layers` (up to `max_proposers`). Layers, aggregators, fallbacks and retries run
    one after another, so the widest layer bounds them all. A gate's samples are a layer too."""
    widths = [len(layer.proposers) for pipeline in config.pipelines.values() for layer in pipeline.layers]
    widths += [
        p.gate.samples for p in config.pipelines.values() if p.gate and p.gate.confidence == "agreement"
    ]
    return max([1, max_proposers, *widths])


def pool_size(
    config: GatewayConfig,
    *,
    max_concurrent_requests: int,
    max_proposers: int,
    total: int | None,
    caps: dict[str, int],
) -> PoolSize:
    """The pool for a worker admitting `max_concurrent_requests`: `total` if set, else what they need
    (plus shadow evaluations and gate audits, which run outside admission, up to each pipeline's
    `max_concurrent` and `audit_max_concurrent`), with
    `caps`, the providers' own caps on calls in flight (`providers.connection_caps`)."""
    fan_out = widest_fan_out(config, max_proposers)
    shadows = sum(p.shadow.max_concurrent for p in config.pipelines.values() if p.shadow is not None)
    shadows += sum(
        p.gate.audit_max_concurrent for p in config.pipelines.values() if p.gate and p.gate.audit_rate
    )
    needed = (max_concurrent_requests + shadows) * fan_out
    if total is not None and total < needed:
        logger.warning(
            "MOA_UPSTREAM_MAX_CONNECTIONS=%d is below the %d connections %d admitted requests can use at "
            "once (widest layer: %d calls): requests will queue for connections before admission refuses "
            "any; lower MOA_MAX_CONCURRENT_REQUESTS to %d to make admission the limit",
            total,
            needed,
            max_concurrent_requests,
            fan_out,
            max(1, total // fan_out - shadows),
        )
    return PoolSize(total or needed, caps)


class ConnectionPool:
    """Counts the connections calls hold, against the total and their provider's cap; a call over either
    waits (FIFO) for one to be given back, and how long it waited is reported."""

    def __init__(self, size: PoolSize, observer: PoolObserver | None = None) -> None:
        self.size = size
        self._total = asyncio.Semaphore(size.total)
        self._caps = {name: asyncio.Semaphore(cap) for name, cap in size.per_provider.items()}
        self._observer = observer

    async def acquire(self, provider: str) -> None:
        """Wait for a connection for a call to `provider`; give it back with `release(provider)`."""
        started = time.perf_counter()
        cap = self._caps.get(provider)
        if cap is not None:
            await cap.acquire()  # the provider's own cap first: a call it holds back takes no total slot
        try:
            await self._total.acquire()
        except BaseException:  # cancelled while waiting
            if cap is not None:
                cap.release()
            raise
        if self._observer is not None:
            self._observer.connection_acquired(provider, time.perf_counter() - started)

    def release(self, provider: str) -> None:
        self._total.release()
        cap = self._caps.get(provider)
        if cap is not None:
            cap.release()
        if self._observer is not None:
            self._observer.connection_released(provider)
