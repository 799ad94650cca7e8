"""The response store every worker on one host shares: one SQLite file in WAL mode (readers never wait
for the writer; writers queue on a busy timeout), bounded by entries, bytes and age as the memory store
is. Each worker's calls run on a thread of its own, never on the event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from moa_gateway.core.caller import Caller
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.service.response_store.entry import StoredResponse, StoreLimits

logger = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_S = 10.0  # how long a write waits for another worker's write before it fails (502)
SCHEME = "sqlite://"

# `seq` orders entries as they were stored (the oldest are evicted first); `totals` holds the number and
# bytes of entries, kept by triggers, so the limits are checked without a scan of the table.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stored_responses (
    seq INTEGER PRIMARY KEY,
    caller TEXT NOT NULL,
    id TEXT NOT NULL,
    stored_at REAL NOT NULL,
    size INTEGER NOT NULL,
    entry BLOB NOT NULL,
    UNIQUE (caller, id)
);
CREATE INDEX IF NOT EXISTS stored_responses_by_age ON stored_responses (stored_at);
CREATE TABLE IF NOT EXISTS totals (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS stored_response_added AFTER INSERT ON stored_responses BEGIN
    UPDATE totals SET entries = entries + 1, bytes = bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS stored_response_removed AFTER DELETE ON stored_responses BEGIN
    UPDATE totals SET entries = entries - 1, bytes = bytes - OLD.size;
END;
"""


def sqlite_path(location: str) -> Path:
    """The file of `sqlite://<path>`: `sqlite:///data/r.db` is /data/r.db (SQLAlchemy's four slashes,
    `sqlite:////data/r.db`, too); `sqlite://r.db` is r.db in the working directory."""
    path = location.removeprefix(SCHEME)
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    if not path or "?" in path or path.endswith((":memory:", "/")):
        raise ValueError(
            "MOA_RESPONSES_STORE=sqlite:///path/to/file.db names a file every worker can open, with no options"
        )
    return Path(path).absolute()


class SqliteResponseStore:
    """One row per response, keyed by (caller, id). Time is the wall clock (shared by the processes);
    expired rows are invisible at once and deleted by the next write."""

    def __init__(self, path: Path, limits: StoreLimits, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._limits = limits
        self._clock = clock
        self._db = _open(path)  # at start-up, so a file that cannot be opened stops it
        # One thread: the connection is used by one thread at a time, and a transaction is never split.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="moa-response-store")

    async def put(self, entry: StoredResponse) -> None:
        raw = entry.encode()
        if self._limits.too_large(entry, raw):
            return
        await self._run(self._put, entry.caller.id, entry.id, raw)

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        raw = await self._run(self._get, caller.id, response_id)
        return None if raw is None else StoredResponse.decode(raw)

    async def delete(self, caller: Caller, response_id: str) -> bool:
        return await self._run(self._delete, caller.id, response_id)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown(wait=False)  # its last job (the close) is done

    def describe(self) -> str:
        return f"sqlite {self.path}, shared by the workers of this host"

    async def _run(self, work: Callable[..., T], *args: str | bytes) -> T:
        """`work` on the store's thread; an SQLite error is the gateway's failure (502)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)
        except sqlite3.Error as exc:
            logger.warning("response store: %s: %s", type(exc).__name__, exc)
            raise Failure(
                FailureKind.SERVER_ERROR, f"The response store is unavailable ({type(exc).__name__})"
            ) from None

    # What follows runs on the store's thread.

    def _put(self, caller: str, response_id: str, raw: bytes) -> None:
        with self._writing() as db:
            now = self._clock()
            db.execute("DELETE FROM stored_responses WHERE stored_at <= ?", (now - self._limits.ttl_s,))
            db.execute("DELETE FROM stored_responses WHERE caller = ? AND id = ?", (caller, response_id))
            db.execute(
                "INSERT INTO stored_responses (caller, id, stored_at, size, entry) VALUES (?, ?, ?, ?, ?)",
                (caller, response_id, now, len(raw), raw),
            )
            entries, total = db.execute("SELECT entries, bytes FROM totals").fetchone()
            if entries > self._limits.max_entries:
                db.execute(
                    "DELETE FROM stored_responses WHERE seq IN "
                    "(SELECT seq FROM stored_responses ORDER BY seq LIMIT ?)",
                    (entries - self._limits.max_entries,),
                )
                total = db.execute("SELECT bytes FROM totals").fetchone()[0]
            while total > self._limits.max_bytes:  # ends: the new entry alone is within the limit
                db.execute("DELETE FROM stored_responses WHERE seq = (SELECT min(seq) FROM stored_responses)")
                total = db.execute("SELECT bytes FROM totals").fetchone()[0]

    def _get(self, caller: str, response_id: str) -> bytes | None:
        row = self._db.execute(
            "SELECT entry FROM stored_responses WHERE caller = ? AND id = ? AND stored_at > ?",
            (caller, response_id, self._clock() - self._limits.ttl_s),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def _delete(self, caller: str, response_id: str) -> bool:
        deleted = self._db.execute(
            "DELETE FROM stored_responses WHERE caller = ? AND id = ? AND stored_at > ?",
            (caller, response_id, self._clock() - self._limits.ttl_s),
        )
        return deleted.rowcount > 0

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, its lock taken at the start (waiting up to the busy timeout), so two
        workers never both read the totals and then both evict."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise


def _open(path: Path) -> sqlite3.Connection:
    """The file, made if missing (readable by its owner only: it holds every caller's responses), in WAL
    mode, with the schema; raises ValueError naming the file if it cannot be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite's -wal and -shm files follow it
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # e.g. a network file system, where several processes would corrupt it
                raise sqlite3.OperationalError(f"journal mode {mode}, not WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
            db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")  # workers start together
        except BaseException:
            db.close()
            raise
    except (OSError, sqlite3.Error) as exc:
        raise ValueError(f"MOA_RESPONSES_STORE: cannot use the SQLite file {path}: {exc}") from None
    return db
