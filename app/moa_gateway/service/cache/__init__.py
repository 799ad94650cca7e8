"""The exact response cache (a pipeline's or model alias's `cache: {ttl_s}`): an answer kept by its
canonical request and caller, replayed with no upstream call. Its store: this worker's memory (the
default, LRU by bytes), an SQLite file the workers of one host share, or Redis, shared by replicas."""

from __future__ import annotations

from moa_gateway.service.cache.cache import (
    BYPASSED,
    HEADER,
    CacheLookup,
    CachePolicy,
    CacheStatus,
    ResponseCache,
)
from moa_gateway.service.cache.memory import MemoryCacheStore
from moa_gateway.service.cache.store import CacheObserver, CacheStore, CacheUnavailable, NoCacheMetrics

__all__ = [
    "BYPASSED",
    "HEADER",
    "CacheLookup",
    "CacheObserver",
    "CachePolicy",
    "CacheStatus",
    "CacheStore",
    "CacheUnavailable",
    "MemoryCacheStore",
    "NoCacheMetrics",
    "ResponseCache",
    "cache_store",
]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def cache_store(location: str, max_bytes: int, observer: CacheObserver) -> CacheStore:
    """`memory`, `sqlite:///path/to/file.db`, or a Redis URL (`redis://`, `rediss://`, `unix://`). The
    SQLite file is opened here (an unusable one stops the start); Redis connects on first use."""
    if location == "memory":
        return MemoryCacheStore(max_bytes, observer)
    if location.startswith("sqlite://"):
        from moa_gateway.service.cache.sqlite_store import SqliteCacheStore

        return SqliteCacheStore.at(location, max_bytes, observer)
    if location.startswith(_REDIS_SCHEMES):
        from moa_gateway.service.cache.redis_store import RedisCacheStore

        return RedisCacheStore.at(location, max_bytes)
    # checked here, not by the settings, whose errors would echo the value (a URL may hold a password)
    raise ValueError(
        "MOA_CACHE is `memory`, `sqlite:///path/to/file.db` or a Redis URL (redis://, rediss://, unix://)"
    )
