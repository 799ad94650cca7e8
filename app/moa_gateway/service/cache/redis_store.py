"""The response-cache store shared by replicas: Redis, which expires each answer after its TTL (and
evicts by its own `maxmemory-policy`, which an operator sets to an LRU one for a cache)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from moa_gateway.service.cache.store import CacheUnavailable
from moa_gateway.service.response_store.redis_store import _without_secrets

logger = logging.getLogger(__name__)

# A cache that cannot answer quickly is worth less than none: past this the request runs instead.
TIMEOUT_S = 1.0


class RedisCacheStore:
    """One Redis string per answer (`moa:cache:<key>`), set with the answer's TTL."""

    PREFIX = "moa:cache:"

    def __init__(self, client: Any, max_bytes: int, where: str = "redis") -> None:
        self._redis = client  # redis.asyncio.Redis
        self._max_bytes = max_bytes
        self._where = where

    @classmethod
    def at(cls, url: str, max_bytes: int) -> RedisCacheStore:
        """A store on the server at `url`; it connects on first use."""
        from redis.asyncio import Redis  # only when configured

        client = Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        return cls(client, max_bytes, _without_secrets(url))

    async def get(self, key: str) -> bytes | None:
        async with self._reaching():
            raw = await self._redis.get(self.PREFIX + key)
        return None if raw is None else bytes(raw)

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) > self._max_bytes:
            logger.warning("response cache: an answer of %d bytes is over MOA_CACHE_MAX_BYTES", len(value))
            return
        async with self._reaching():
            await self._redis.set(self.PREFIX + key, value, px=max(1, round(ttl_s * 1000)))

    async def close(self) -> None:
        await self._redis.aclose()

    def describe(self) -> str:
        return f"{self._where}, shared by every replica and worker that uses it"

    @asynccontextmanager
    async def _reaching(self) -> AsyncIterator[None]:
        """A Redis error (a timeout included) as CacheUnavailable, never with the URL."""
        from redis.exceptions import RedisError

        try:
            yield
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"redis: {type(exc).__name__}") from None
