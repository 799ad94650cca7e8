"""The response store for several replicas: Redis, which expires each entry after the TTL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from moa_gateway.core.caller import Caller
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.service.response_store.entry import StoredResponse, StoreLimits

logger = logging.getLogger(__name__)


class RedisResponseStore:
    """One Redis string per response (`moa:response:<caller>:<id>`), set with the TTL: Redis expires it.
    The caller is in the key, so a lookup by another caller misses as an unknown id does."""

    PREFIX = "moa:response:"

    def __init__(self, client: Any, limits: StoreLimits, where: str = "redis") -> None:
        self._redis = client  # redis.asyncio.Redis
        self._limits = limits
        self._where = where

    @classmethod
    def at(cls, url: str, limits: StoreLimits) -> RedisResponseStore:
        """A store on the server at `url`; it connects on first use."""
        from redis.asyncio import Redis  # only when configured

        return cls(Redis.from_url(url), limits, _without_secrets(url))

    async def put(self, entry: StoredResponse) -> None:
        raw = entry.encode()
        if self._limits.too_large(entry, raw):
            return
        async with self._reaching():
            await self._redis.set(self.key(entry.caller, entry.id), raw, ex=max(1, round(self._limits.ttl_s)))

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        async with self._reaching():
            raw = await self._redis.get(self.key(caller, response_id))
        return None if raw is None else StoredResponse.decode(raw)

    async def delete(self, caller: Caller, response_id: str) -> bool:
        async with self._reaching():
            return bool(await self._redis.delete(self.key(caller, response_id)))

    async def close(self) -> None:
        await self._redis.aclose()

    def describe(self) -> str:
        return f"{self._where}, shared by every replica and worker that uses it"

    @classmethod
    def key(cls, caller: Caller, response_id: str) -> str:
        return f"{cls.PREFIX}{caller.id}:{response_id}"

    @asynccontextmanager
    async def _reaching(self) -> AsyncIterator[None]:
        """A Redis error as the gateway's failure (502), never with the URL (it may hold a password)."""
        from redis.exceptions import RedisError

        try:
            yield
        except RedisError as exc:
            logger.warning("response store: %s", type(exc).__name__)
            raise Failure(
                FailureKind.SERVER_ERROR, f"The response store is unavailable ({type(exc).__name__})"
            ) from None


def _without_secrets(url: str) -> str:
    """`redis host:port/db` for the log: no user, password or query (which may hold a password either)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"redis unix:{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.scheme} {parts.hostname}:{port}{parts.path}"
