"""The per-worker panel store of `fanout: user_turn`: least recently used out past its entries or its bytes,
and entries expiring after their TTL."""

from __future__ import annotations

from moa_gateway.core.panel_store import KeptPanel, MemoryPanelStore
from moa_gateway.core.types import Answer, Usage


def kept(text: str) -> KeptPanel:
    return KeptPanel((("alpha", Answer(text, "stop", Usage(1, 1))),))


async def test_the_store_forgets_the_least_recently_used_past_its_entries() -> None:
    store = MemoryPanelStore(max_entries=2)
    await store.put("a", kept("A"))
    await store.put("b", kept("B"))
    assert await store.get("a") is not None  # a is now the most recently used

    await store.put("c", kept("C"))

    assert await store.get("b") is None
    assert await store.get("a") is not None and await store.get("c") is not None


async def test_the_store_stays_within_its_bytes() -> None:
    one = kept("x" * 1000).size()
    store = MemoryPanelStore(max_bytes=2 * one)
    for key in "abc":
        await store.put(key, kept("x" * 1000))

    assert len(store) == 2 and store.bytes == 2 * one and await store.get("a") is None
    await store.put("huge", kept("x" * 10 * one))
    assert await store.get("huge") is None and len(store) == 2, "an entry over the limit is not kept"


async def test_an_entry_expires_after_its_ttl() -> None:
    now = [0.0]
    store = MemoryPanelStore(ttl_s=60, clock=lambda: now[0])
    await store.put("a", kept("A"))

    now[0] = 59.0
    assert await store.get("a") is not None
    now[0] = 61.0
    assert await store.get("a") is None and store.bytes == 0
