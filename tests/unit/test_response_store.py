"""The in-memory response store: bounded by entries, total bytes and age, oldest evicted first; each
entry reachable only by the caller that stored it."""

from __future__ import annotations

import hashlib

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.service.response_store import (
    MemoryResponseStore,
    StoredResponse,
    StoreLimits,
    response_store,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ADA = Caller.of_key_digest(hashlib.sha256(b"ada's key").digest())


def entry(response_id: str, text: str = "x", caller: Caller = ADA) -> StoredResponse:
    return StoredResponse(
        response_id, caller, {"id": response_id, "output_text": text}, [{"role": "user", "content": text}]
    )


async def test_put_get_delete_round_trip() -> None:
    store = MemoryResponseStore(StoreLimits())
    await store.put(entry("resp_1", "hello"))
    got = await store.get(ADA, "resp_1")
    assert got == entry("resp_1", "hello")
    assert await store.delete(ADA, "resp_1") is True
    assert await store.get(ADA, "resp_1") is None
    assert await store.delete(ADA, "resp_1") is False
    assert store.bytes == 0


async def test_over_max_entries_the_oldest_go_first() -> None:
    store = MemoryResponseStore(StoreLimits(max_entries=2))
    for name in ("a", "b", "c"):
        await store.put(entry(name))
    assert [await store.get(ADA, n) is not None for n in ("a", "b", "c")] == [False, True, True]
    assert len(store) == 2


async def test_over_max_bytes_the_oldest_go_first_and_a_huge_entry_is_not_kept() -> None:
    size = len(entry("a", "x" * 100).encode())
    store = MemoryResponseStore(StoreLimits(max_bytes=size * 2 + 10))
    for name in ("a", "b", "c"):
        await store.put(entry(name, "x" * 100))
    assert (
        await store.get(ADA, "a") is None
        and await store.get(ADA, "b") is not None
        and await store.get(ADA, "c") is not None
    )
    assert store.bytes <= size * 2 + 10

    await store.put(entry("huge", "x" * (size * 3)))
    assert await store.get(ADA, "huge") is None and len(store) == 2  # nothing else was evicted for it


async def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    store = MemoryResponseStore(StoreLimits(ttl_s=60), clock)
    await store.put(entry("old"))
    clock.now += 30
    await store.put(entry("new"))
    clock.now += 31
    assert await store.get(ADA, "old") is None and await store.get(ADA, "new") is not None
    clock.now += 30
    assert await store.get(ADA, "new") is None and store.bytes == 0


async def test_storing_an_id_again_replaces_it_and_counts_its_bytes_once() -> None:
    store = MemoryResponseStore(StoreLimits())
    await store.put(entry("a", "first"))
    await store.put(entry("a", "second"))
    got = await store.get(ADA, "a")
    assert got is not None and got.response["output_text"] == "second"
    assert store.bytes == len(entry("a", "second").encode()) and len(store) == 1


async def test_an_entry_is_only_reachable_by_the_caller_that_stored_it() -> None:
    store = MemoryResponseStore(StoreLimits())
    bob = Caller.of_key_digest(hashlib.sha256(b"bob's key").digest())
    await store.put(entry("resp_1", "ada's"))
    await store.put(entry("resp_2", "anyone's", ANONYMOUS))
    assert await store.get(bob, "resp_1") is None and await store.get(ANONYMOUS, "resp_1") is None
    assert await store.delete(bob, "resp_1") is False
    assert await store.get(ADA, "resp_1") == entry("resp_1", "ada's")
    assert await store.get(ADA, "resp_2") is None
    assert await store.get(ANONYMOUS, "resp_2") == entry("resp_2", "anyone's", ANONYMOUS)


def test_a_caller_is_named_by_a_hash_of_the_key_digest_never_the_digest() -> None:
    digest = hashlib.sha256(b"ada's key").digest()
    assert Caller.of_key_digest(digest) == ADA  # the same on every worker and replica
    assert ADA != Caller.of_key_digest(hashlib.sha256(b"bob's key").digest()) != ANONYMOUS
    assert digest.hex()[:16] not in ADA.id


async def test_the_start_up_line_says_who_shares_the_store_and_never_a_password() -> None:
    limits = StoreLimits()
    assert response_store("memory", limits).describe() == "memory, this worker only"
    redis = response_store("redis://:hunter2@cache.internal:6380/2?password=hunter3", limits)
    try:
        assert (
            redis.describe() == "redis cache.internal:6380/2, shared by every replica and worker that uses it"
        )
    finally:
        await redis.close()  # never connected
    assert "hunter" not in response_store("unix://:hunter2@/run/redis.sock", limits).describe()
