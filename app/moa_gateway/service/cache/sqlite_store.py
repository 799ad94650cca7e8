"""The response-cache store every worker on one host shares: one SQLite file in WAL mode, as the
response store's (app/moa_gateway/service/response_store/sqlite_store.py), bounded by bytes (least
recently used evicted first) with each answer's own TTL. Calls run on a thread, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from moa_gateway.service.cache.store import CacheObserver, CacheUnavailable, entry_size
from moa_gateway.service.response_store.sqlite_store import BUSY_TIMEOUT_S, sqlite_path

logger = logging.getLogger(__name__)
T = TypeVar("T")

# `totals` holds the bytes of all entries, kept by triggers, so the limit is checked without a scan.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cached_answers (
    key TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    used_at REAL NOT NULL,
    size INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS cached_answers_by_use ON cached_answers (used_at);
CREATE TABLE IF NOT EXISTS cache_totals (one INTEGER PRIMARY KEY CHECK (one = 1), bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO cache_totals VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS cached_answer_added AFTER INSERT ON cached_answers BEGIN
    UPDATE cache_totals SET bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS cached_answer_removed AFTER DELETE ON cached_answers BEGIN
    UPDATE cache_totals SET bytes = bytes - OLD.size;
END;
"""


class SqliteCacheStore:
    """One row per answer. Time is the wall clock (shared by the processes); an expired row is never
    read, and deleted by the next write. A hit marks its row used, for the LRU order."""

    def __init__(
        self, path: Path, max_bytes: int, observer: CacheObserver, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._observer = observer
        self._clock = clock
        self._db = _open(path)  # at start-up, so a file that cannot be opened stops it
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="moa-response-cache")

    @classmethod
    def at(cls, location: str, max_bytes: int, observer: CacheObserver) -> SqliteCacheStore:
        try:
            path = sqlite_path(location)
        except ValueError:
            raise ValueError(
                "MOA_CACHE=sqlite:///path/to/file.db names a file every worker can open"
            ) from None
        return cls(path, max_bytes, observer)

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, key)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if entry_size(key, value) > self._max_bytes:
            logger.warning("response cache: an answer of %d bytes is over MOA_CACHE_MAX_BYTES", len(value))
            return
        expired, evicted = await self._run(self._put, key, value, ttl_s)
        if expired:
            self._observer.cache_evicted("expired", expired)
        if evicted:
            self._observer.cache_evicted("size", evicted)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown(wait=False)

    def describe(self) -> str:
        return f"sqlite {self.path}, shared by the workers of this host, {self._max_bytes} bytes"

    async def _run(self, work: Callable[..., T], *args: str | bytes | float) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)
        except sqlite3.Error as exc:
            raise CacheUnavailable(f"sqlite: {type(exc).__name__}: {exc}") from None

    # What follows runs on the store's thread.

    def _get(self, key: str) -> bytes | None:
        now = self._clock()
        row = self._db.execute(
            "SELECT value FROM cached_answers WHERE key = ? AND expires_at > ?", (key, now)
        ).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE cached_answers SET used_at = ? WHERE key = ?", (now, key))
        return bytes(row[0])

    def _put(self, key: str, value: bytes, ttl_s: float) -> tuple[int, int]:
        """(expired, evicted) rows deleted to make room."""
        db, now = self._db, self._clock()
        db.execute("BEGIN IMMEDIATE")  # the write lock first: two workers never both evict
        try:
            expired = db.execute("DELETE FROM cached_answers WHERE expires_at <= ?", (now,)).rowcount
            db.execute("DELETE FROM cached_answers WHERE key = ?", (key,))
            db.execute(
                "INSERT INTO cached_answers (key, expires_at, used_at, size, value) VALUES (?, ?, ?, ?, ?)",
                (key, now + ttl_s, now, entry_size(key, value), value),
            )
            evicted = 0
            while db.execute("SELECT bytes FROM cache_totals").fetchone()[0] > self._max_bytes:
                db.execute(
                    "DELETE FROM cached_answers WHERE key = "
                    "(SELECT key FROM cached_answers ORDER BY used_at LIMIT 1)"
                )
                evicted += 1  # ends: the new entry alone is within the limit
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return expired, evicted


def _open(path: Path) -> sqlite3.Connection:
    """The file, made if missing (its owner's only: it holds every caller's answers), in WAL mode, with
    the schema; raises ValueError naming the file if it cannot be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise sqlite3.OperationalError(f"journal mode {mode}, not WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        except BaseException:
            db.close()
            raise
    except (OSError, sqlite3.Error) as exc:
        raise ValueError(f"MOA_CACHE: cannot use the SQLite file {path}: {exc}") from None
    return db
