"""The in-memory response store: bounded by entries, total bytes and age, oldest evicted first."""

from __future__ import annotations

from moa_gateway.service.response_store import MemoryResponseStore, StoredResponse, StoreLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(response_id: str, text: str = "x") -> StoredResponse:
    return StoredResponse(
        response_id, {"id": response_id, "output_text": text}, [{"role": "user", "content": text}]
    )


async def test_put_get_delete_round_trip() -> None:
    store = MemoryResponseStore(StoreLimits())
    await store.put(entry("resp_1", "hello"))
    got = await store.get("resp_1")
    assert got == entry("resp_1", "hello")
    assert await store.delete("resp_1") is True
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False
    assert store.bytes == 0


async def test_over_max_entries_the_oldest_go_first() -> None:
    store = MemoryResponseStore(StoreLimits(max_entries=2))
    for name in ("a", "b", "c"):
        await store.put(entry(name))
    assert [await store.get(n) is not None for n in ("a", "b", "c")] == [False, True, True]
    assert len(store) == 2


async def test_over_max_bytes_the_oldest_go_first_and_a_huge_entry_is_not_kept() -> None:
    size = len(entry("a", "x" * 100).encode())
    store = MemoryResponseStore(StoreLimits(max_bytes=size * 2 + 10))
    for name in ("a", "b", "c"):
        await store.put(entry(name, "x" * 100))
    assert (
        await store.get("a") is None and await store.get("b") is not None and await store.get("c") is not None
    )
    assert store.bytes <= size * 2 + 10

    await store.put(entry("huge", "x" * (size * 3)))
    assert await store.get("huge") is None and len(store) == 2  # nothing else was evicted for it


async def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryResponseStore(StoreLimits(ttl_s=60), clock)
    await store.put(entry("old"))
    clock.now += 30
    await store.put(entry("new"))
    clock.now += 31
    assert await store.get("old") is None and await store.get("new") is not None
    clock.now += 30
    assert await store.get("new") is None and store.bytes == 0


async def test_storing_an_id_again_replaces_it_and_counts_its_bytes_once() -> None:
    store = MemoryResponseStore(StoreLimits())
    await store.put(entry("a", "first"))
    await store.put(entry("a", "second"))
    got = await store.get("a")
    assert got is not None and got.response["output_text"] == "second"
    assert store.bytes == len(entry("a", "second").encode()) and len(store) == 1
