"""The SQLite response store: the memory store's limits (entries, bytes, age; oldest evicted first) and
caller scoping, kept in one file that several stores (as several workers) share, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import stat
from pathlib import Path

import pytest

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.service.response_store import (
    SqliteResponseStore,
    StoredResponse,
    StoreLimits,
    response_store,
)
from moa_gateway.service.response_store.sqlite_store import sqlite_path

ADA = Caller.of_key_digest(hashlib.sha256(b"ada's key").digest())
BOB = Caller.of_key_digest(hashlib.sha256(b"bob's key").digest())


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(response_id: str, text: str = "x", caller: Caller = ADA) -> StoredResponse:
    return StoredResponse(
        response_id, caller, {"id": response_id, "output_text": text}, [{"role": "user", "content": text}]
    )


async def kept(store: SqliteResponseStore, *ids: str) -> list[bool]:
    return [await store.get(ADA, i) is not None for i in ids]


async def test_put_get_delete_round_trip_for_the_caller_only(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "r.db", StoreLimits())
    try:
        await store.put(entry("resp_1", "hello"))
        assert await store.get(BOB, "resp_1") is None and await store.get(ANONYMOUS, "resp_1") is None
        assert await store.delete(BOB, "resp_1") is False
        assert await store.get(ADA, "resp_1") == entry("resp_1", "hello")
        assert await store.delete(ADA, "resp_1") is True
        assert await store.get(ADA, "resp_1") is None
        assert await store.delete(ADA, "resp_1") is False
    finally:
        await store.close()


async def test_two_stores_on_one_file_share_entries_and_limits(tmp_path: Path) -> None:
    """Two workers: what one stores the other reads and deletes, and eviction counts both's entries."""
    one = SqliteResponseStore(tmp_path / "r.db", StoreLimits(max_entries=2))
    two = SqliteResponseStore(tmp_path / "r.db", StoreLimits(max_entries=2))
    try:
        await one.put(entry("a"))
        await two.put(entry("b"))
        assert await two.get(ADA, "a") == entry("a") and await one.get(ADA, "b") == entry("b")
        await one.put(entry("c"))
        assert await kept(two, "a", "b", "c") == [False, True, True]
        assert await two.delete(ADA, "c") is True
        assert await one.get(ADA, "c") is None
    finally:
        await one.close()
        await two.close()


async def test_over_max_bytes_the_oldest_go_first_and_a_huge_entry_is_not_kept(tmp_path: Path) -> None:
    size = len(entry("a", "x" * 100).encode())
    store = SqliteResponseStore(tmp_path / "r.db", StoreLimits(max_bytes=size * 2 + 10))
    try:
        for name in ("a", "b", "c"):
            await store.put(entry(name, "x" * 100))
        assert await kept(store, "a", "b", "c") == [False, True, True]
        await store.put(entry("huge", "x" * (size * 3)))
        assert await kept(store, "huge", "b", "c") == [False, True, True]  # nothing evicted for it
    finally:
        await store.close()


async def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteResponseStore(tmp_path / "r.db", StoreLimits(ttl_s=60), clock)
    try:
        await store.put(entry("old"))
        clock.now += 30
        await store.put(entry("new"))
        clock.now += 31
        assert await kept(store, "old", "new") == [False, True]
        assert await store.delete(ADA, "old") is False
        clock.now += 30
        assert await kept(store, "new") == [False]
    finally:
        await store.close()


async def test_storing_an_id_again_replaces_it(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "r.db", StoreLimits(max_entries=1))
    try:
        await store.put(entry("a", "first"))
        await store.put(entry("a", "second"))
        got = await store.get(ADA, "a")
        assert got is not None and got.response["output_text"] == "second"
        await store.put(entry("a", "first", BOB))  # another caller's id "a" is another entry
        assert await store.get(BOB, "a") is not None and await store.get(ADA, "a") is None  # max 1
    finally:
        await store.close()


async def test_the_file_is_the_owners_alone_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "made" / "here" / "r.db"
    store = response_store(f"sqlite://{path}", StoreLimits())
    try:
        await store.put(entry("a"))
        assert store.describe() == f"sqlite {path}, shared by the workers of this host"
    finally:
        await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_write_waiting_for_another_worker_does_not_block_the_event_loop(tmp_path: Path) -> None:
    store = SqliteResponseStore(tmp_path / "r.db", StoreLimits())
    other_worker = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    try:
        other_worker.execute("BEGIN IMMEDIATE")  # holds the write lock
        put = asyncio.create_task(store.put(entry("a")))
        ticks = 0
        for _ in range(20):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not put.done() and ticks == 20, "the loop ran while the put waited for the lock"
        other_worker.execute("COMMIT")
        await put
        assert await kept(store, "a") == [True]
    finally:
        other_worker.close()
        await store.close()


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("sqlite:///data/r.db", "/data/r.db"),
        ("sqlite:////data/r.db", "/data/r.db"),  # SQLAlchemy's absolute form
        ("sqlite://r.db", str(Path.cwd() / "r.db")),
    ],
)
def test_the_url_names_the_file(location: str, path: str) -> None:
    assert sqlite_path(location) == Path(path)


@pytest.mark.parametrize(
    "location", ["sqlite://", "sqlite:///:memory:", "sqlite:///data/", "sqlite:///r.db?mode=ro"]
)
def test_a_url_that_names_no_shared_file_is_refused(location: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///path/to/file\.db"):
        sqlite_path(location)


def test_a_file_that_cannot_be_opened_stops_the_start_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"cannot use the SQLite file .*not-a-dir/r\.db"):
        response_store(f"sqlite://{blocker}/r.db", StoreLimits())
