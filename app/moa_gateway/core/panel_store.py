"""Where the panel of a user turn is kept (`fanout: user_turn`): a small port, and the bounded in-memory
store each worker holds. A store shared by workers and replicas (Redis, say) can implement the port later;
until then a turn whose calls land on another worker runs its proposers there once more."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from moa_gateway.core.types import Answer

# Per worker, by default: 1024 turns, 32 MiB of answers, each kept 15 minutes after it was written.
MAX_ENTRIES = 1024
MAX_BYTES = 32 * 1024 * 1024
TTL_S = 900.0
_ENTRY_OVERHEAD = 512  # bytes an entry costs beyond its texts (key, tuples, usage), roughly


@dataclass(frozen=True)
class KeptPanel:
    """What a turn's proposers came to: the last layer's answers, and whether they disagreed so the
    escalation model aggregates (the same aggregator on every call of the turn)."""

    proposals: tuple[tuple[str, Answer], ...]
    escalated: bool = False
    layer: int = 0  # the layer whose answers they are

    def size(self) -> int:
        """Bytes it holds, roughly: its texts (UTF-8 at most 4 bytes a character; counted 1) and overhead."""
        texts = sum(len(a.text) + len(a.reasoning or "") + len(m) for m, a in self.proposals)
        return texts + _ENTRY_OVERHEAD * (1 + len(self.proposals))


class PanelStore(Protocol):
    """Kept panels by turn key (app/moa_gateway/core/fanout.py makes the key: it names the caller)."""

    async def get(self, key: str) -> KeptPanel | None: ...

    async def put(self, key: str, panel: KeptPanel) -> None: ...


class MemoryPanelStore:
    """Least recently used first out, past `max_entries` or `max_bytes`; an entry older than `ttl_s` is
    gone. One per worker: not shared between processes."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries, self._max_bytes, self._ttl_s = max_entries, max_bytes, ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, int, KeptPanel]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> KeptPanel | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, _, panel = entry
        if self._clock() - stored_at > self._ttl_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return panel

    async def put(self, key: str, panel: KeptPanel) -> None:
        size = panel.size()
        if key in self._entries:
            self._drop(key)
        if size > self._max_bytes:
            return  # it would push out everything else
        self._entries[key] = (self._clock(), size, panel)
        self.bytes += size
        while len(self._entries) > self._max_entries or self.bytes > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, size, _ = self._entries.pop(key)
        self.bytes -= size
