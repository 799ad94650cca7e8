"""Where stored responses live (`store: true`), for `GET`/`DELETE /v1/responses/{id}` and
`previous_response_id`: in this worker's memory (the default), in an SQLite file every worker on the host
shares, or in Redis, shared by every replica; each bounded by age, the first two by entries and bytes too.
Every entry belongs to the caller that stored it: another caller's lookup finds nothing, as for an
unknown id."""

from __future__ import annotations

from moa_gateway.service.response_store.entry import NoStore, ResponseStore, StoredResponse, StoreLimits
from moa_gateway.service.response_store.memory import MemoryResponseStore
from moa_gateway.service.response_store.redis_store import RedisResponseStore
from moa_gateway.service.response_store.sqlite_store import SCHEME, SqliteResponseStore, sqlite_path

__all__ = [
    "MemoryResponseStore",
    "NoStore",
    "RedisResponseStore",
    "ResponseStore",
    "SqliteResponseStore",
    "StoreLimits",
    "StoredResponse",
    "response_store",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def response_store(location: str, limits: StoreLimits) -> ResponseStore:
    """`memory`, `none`, `sqlite:///path/to/file.db`, or a Redis URL (`redis://`, `rediss://`,
    `unix://`). The SQLite file is opened here (an unusable one stops the start); Redis connects on
    first use."""
    if location == "memory":
        return MemoryResponseStore(limits)
    if location == "none":
        return NoStore()
    if location.startswith(SCHEME):
        return SqliteResponseStore(sqlite_path(location), limits)
    if location.startswith(_REDIS_SCHEMES):
        return RedisResponseStore.at(location, limits)
    # checked here, not by the settings, whose errors would echo the value (a URL may hold a password)
    raise ValueError(
        "MOA_RESPONSES_STORE is `memory`, `none`, `sqlite:///path/to/file.db` or a Redis URL "
        "(redis://, rediss://, unix://)"
    )
