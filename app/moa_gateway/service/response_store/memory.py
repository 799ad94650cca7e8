"""The default response store: in this worker's memory, bounded by entries, bytes and age."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from moa_gateway.core.caller import Caller
from moa_gateway.service.response_store.entry import StoredResponse, StoreLimits


class MemoryResponseStore:
    """Encoded entries in insertion order: over `max_entries` or `max_bytes` in all, the oldest go first;
    an entry older than `ttl_s` is gone. One larger than `max_bytes` alone is not kept."""

    def __init__(self, limits: StoreLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        # (caller id, response id) -> (stored at, entry), oldest first
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, entry: StoredResponse) -> None:
        raw = entry.encode()
        if self._limits.too_large(entry, raw):
            return
        key = (entry.caller.id, entry.id)
        self._drop(key)
        self._entries[key] = (self._clock(), raw)
        self.bytes += len(raw)
        self._expire()
        while len(self._entries) > self._limits.max_entries or self.bytes > self._limits.max_bytes:
            self._drop(next(iter(self._entries)))

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        self._expire()
        held = self._entries.get((caller.id, response_id))
        return None if held is None else StoredResponse.decode(held[1])

    async def delete(self, caller: Caller, response_id: str) -> bool:
        self._expire()
        return self._drop((caller.id, response_id))

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def describe(self) -> str:
        return "memory, this worker only"

    def _drop(self, key: tuple[str, str]) -> bool:
        held = self._entries.pop(key, None)
        if held is not None:
            self.bytes -= len(held[1])
        return held is not None

    def _expire(self) -> None:
        """Entries are in the order they were stored, so the expired ones are at the front."""
        oldest_kept = self._clock() - self._limits.ttl_s
        while self._entries:
            key, (stored_at, _) = next(iter(self._entries.items()))
            if stored_at > oldest_kept:
                return
            self._drop(key)
