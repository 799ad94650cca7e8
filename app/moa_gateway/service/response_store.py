"""Where stored responses live (`store: true`), for `GET`/`DELETE /v1/responses/{id}` and
`previous_response_id`: in this process, bounded by entries, bytes and age, oldest evicted first
(the default); or in Redis, shared by every replica, each entry expiring after the same TTL. Every entry
belongs to the caller that stored it: another caller's lookup finds nothing, as for an unknown id."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from moa_gateway.core.caller import Caller
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.types import Message
from moa_gateway.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredResponse:
    """A response as returned to its client, and the conversation a continuation of it starts from:
    its history, its input and its output as chat messages (instructions excluded, as OpenAI does);
    stored for `caller`, the only one who may read, continue or delete it."""

    id: str
    caller: Caller
    response: dict[str, Any]
    conversation: list[Message]

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "caller": self.caller.id,
                "response": self.response,
                "conversation": self.conversation,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> StoredResponse:
        data = orjson.loads(raw)
        return cls(data["id"], Caller(data["caller"]), data["response"], data["conversation"])


class ResponseStore(Protocol):
    """Stored responses by caller and id: `get` and `delete` of an id another caller stored behave as
    for an id never stored (None, False), so a caller cannot even learn that it exists."""

    async def put(self, entry: StoredResponse) -> None: ...

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None: ...

    async def delete(self, caller: Caller, response_id: str) -> bool: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class StoreLimits:
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    ttl_s: float = 86_400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreLimits:
        return cls(
            settings.responses_store_max_entries,
            settings.responses_store_max_bytes,
            settings.responses_store_ttl_s,
        )


class NoStore:
    """`MOA_RESPONSES_STORE=none`: nothing is kept, every id is unknown."""

    async def put(self, entry: StoredResponse) -> None:
        return None

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        return None

    async def delete(self, caller: Caller, response_id: str) -> bool:
        return False

    async def close(self) -> None:
        return None


class MemoryResponseStore:
    """Encoded entries in insertion order: over `max_entries` or `max_bytes` in all, the oldest go first;
    an entry older than `ttl_s` is gone. One larger than `max_bytes` alone is not kept."""

    def __init__(self, limits: StoreLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        # (caller id, response id) -> (stored at, entry), oldest first
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, entry: StoredResponse) -> None:
        raw = entry.encode()
        if len(raw) > self._limits.max_bytes:
            logger.warning(
                "response %s not stored: %d bytes, over MOA_RESPONSES_STORE_MAX_BYTES", entry.id, len(raw)
            )
            return
        key = (entry.caller.id, entry.id)
        self._drop(key)
        self._entries[key] = (self._clock(), raw)
        self.bytes += len(raw)
        self._expire()
        while len(self._entries) > self._limits.max_entries or self.bytes > self._limits.max_bytes:
            self._drop(next(iter(self._entries)))

    async def get(self, caller: Caller, response_id: str) -> StoredResponse | None:
        self._expire()
        held = self._entries.get((caller.id, response_id))
        return None if held is None else StoredResponse.decode(held[1])

    async def delete(self, caller: Caller, response_id: str) -> bool:
        self._expire()
        return self._drop((caller.id, response_id))

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _drop(self, key: tuple[str, str]) -> bool:
        held = self._entries.pop(key, None)
        if held is not None:
            self.bytes -= len(held[1])
        return held is not None

    def _expire(self) -> None:
        """Entries are in the order they were stored, so the expired ones are at the front."""
        oldest_kept = self._clock() - self._limits.ttl_s
        while self._entries:
            key, (stored_at, _) = next(iter(self._entries.items()))
            if stored_at > oldest_kept:
                return
            self._drop(key)


class RedisResponseStore:
    """One Redis string per response (`moa:response:<caller>:<id>`), set with the TTL: Redis expires it.
    The caller is in the key, so a lookup by another caller misses as an unknown id does."""

    PREFIX = "moa:response:"

    def __init__(self, client: Any, limits: StoreLimits) -> None:
        self._redis = client  # redis.asyncio.Redis
        self._limits = limits

    async def put(self, entry: StoredResponse) -> None:
        raw = entry.encode()
        if len(raw) > self._limits.max_bytes:
            logger.warning(
                "response %s not stored: %d bytes, over MOA_RESPONSES_STORE_MAX_BYTES", entry.id, len(raw)
            )
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

    @classmethod
    def key(cls, caller: Caller, response_id: str) -> str:
        return f"{cls.PREFIX}{caller.id}:{response_id}"

    async def close(self) -> None:
        await self._redis.aclose()

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


def response_store(location: str, limits: StoreLimits) -> ResponseStore:
    """`memory`, `none`, or a Redis URL (`redis://`, `rediss://`, `unix://`); Redis connects on first use."""
    if location == "memory":
        return MemoryResponseStore(limits)
    if location == "none":
        return NoStore()
    if not location.startswith(("redis://", "rediss://", "unix://")):
        # checked here, not by the settings, whose errors would echo the value (a URL may hold a password)
        raise ValueError(
            "MOA_RESPONSES_STORE is `memory`, `none` or a Redis URL (redis://, rediss://, unix://)"
        )
    from redis.asyncio import Redis  # only when configured

    return RedisResponseStore(Redis.from_url(location), limits)
