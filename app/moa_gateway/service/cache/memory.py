"""The default response-cache store: this worker's memory, least recently used evicted first once the
answers held pass the byte limit, each gone once its time to live has passed."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from moa_gateway.service.cache.store import CacheObserver, entry_size

logger = logging.getLogger(__name__)


class MemoryCacheStore:
    """Entries in use order (a hit moves its entry to the end): over `max_bytes` in all, the front goes
    first. An expired entry is dropped when it is next read, or when it reaches the front."""

    def __init__(
        self, max_bytes: int, observer: CacheObserver, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_bytes = max_bytes
        self._observer = observer
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires at, value)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        held = self._entries.get(key)
        if held is None:
            return None
        if held[0] <= self._clock():
            self._drop(key)
            self._observer.cache_evicted("expired", 1)
            return None
        self._entries.move_to_end(key)
        return held[1]

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        size = entry_size(key, value)
        if size > self._max_bytes:  # larger than the whole store: not kept (said in the log)
            logger.warning("response cache: an answer of %d bytes is over MOA_CACHE_MAX_BYTES", size)
            return
        self._drop(key)
        self._entries[key] = (self._clock() + ttl_s, value)
        self._grew(size)
        expired = evicted = 0
        while self.bytes > self._max_bytes:
            oldest, (expires_at, _) = next(iter(self._entries.items()))
            self._drop(oldest)
            if expires_at <= self._clock():
                expired += 1
            else:
                evicted += 1
        if evicted:
            self._observer.cache_evicted("size", evicted)
        if expired:
            self._observer.cache_evicted("expired", expired)

    async def close(self) -> None:
        self._grew(-self.bytes)
        self._entries.clear()

    def describe(self) -> str:
        return f"memory, this worker only, {self._max_bytes} bytes"

    def _drop(self, key: str) -> None:
        held = self._entries.pop(key, None)
        if held is not None:
            self._grew(-entry_size(key, held[1]))

    def _grew(self, change: int) -> None:
        self.bytes += change
        self._observer.cache_bytes(change)
