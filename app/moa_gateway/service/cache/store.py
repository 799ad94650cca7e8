"""What every response-cache store obeys: bytes by key, each with its own time to live; and what the
stores tell the gateway's metrics (the service imports no telemetry: the runtime hands one in)."""

from __future__ import annotations

from typing import Literal, Protocol

EvictedBy = Literal["size", "expired"]  # room for a newer answer; or its time to live had passed

ENTRY_OVERHEAD = 200  # bytes an entry costs beyond its key and value (a memory slot, an SQLite row)


def entry_size(key: str, value: bytes) -> int:
    """What an entry counts against MOA_CACHE_MAX_BYTES, in every bounded store."""
    return len(key) + len(value) + ENTRY_OVERHEAD


class CacheStore(Protocol):
    """Cached answers by key. A store error is raised as `CacheUnavailable`; the cache then answers as
    if it were off (the request runs), so a cache outage never fails a request."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...

    def describe(self) -> str:
        """For the start-up log: which store, and who shares it (no password, ever)."""
        ...


class CacheObserver(Protocol):
    """The cache's metrics (`moa_cache_*`): labels are config names and fixed words only."""

    def cache_lookup(self, model: str, outcome: Literal["hit", "miss"], saved_usd: float) -> None: ...

    def cache_evicted(self, reason: EvictedBy, entries: int) -> None: ...

    def cache_bytes(self, change: int) -> None:
        """Bytes held in this worker's memory store grew (or, negative, shrank) by `change`."""
        ...

    def cache_error(self, operation: Literal["get", "put"]) -> None: ...


class CacheUnavailable(Exception):
    """The store could not be reached or read; its message names no URL or password."""


class NoCacheMetrics:
    """An observer that records nothing (a cache used outside the HTTP app, tests of the stores)."""

    def cache_lookup(self, model: str, outcome: Literal["hit", "miss"], saved_usd: float) -> None:
        return None

    def cache_evicted(self, reason: EvictedBy, entries: int) -> None:
        return None

    def cache_bytes(self, change: int) -> None:
        return None

    def cache_error(self, operation: Literal["get", "put"]) -> None:
        return None
