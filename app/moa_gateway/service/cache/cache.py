"""The exact response cache, as the chat service uses it: look a request up before it runs (hit, miss
or bypass), replay a hit, and keep a missed request's answer once its run finished well."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum

from moa_gateway.core.caller import Caller
from moa_gateway.core.events import Event, RunFinished
from moa_gateway.core.types import MoaResult
from moa_gateway.service.cache.entry import decode, encode, storable
from moa_gateway.service.cache.key import cache_key
from moa_gateway.service.cache.replay import replayed
from moa_gateway.service.cache.store import CacheObserver, CacheStore, CacheUnavailable
from moa_gateway.wire.requests import ChatCompletionRequest

logger = logging.getLogger(__name__)

HEADER = "x-moa-cache"


class CacheStatus(StrEnum):
    HIT = "hit"  # answered from the cache: no upstream call
    MISS = "miss"  # looked up, not found: the answer is stored if the run ends well
    BYPASS = "bypass"  # not looked up: no cache for the model, or the request asked to skip it


@dataclass(frozen=True)
class CacheLookup:
    """What the cache said of one request."""

    status: CacheStatus
    key: str = ""  # on a miss: where the answer goes
    ttl_s: float = 0.0
    hit: MoaResult | None = None  # on a hit: the answer to replay

    @property
    def headers(self) -> dict[str, str]:
        return {HEADER: self.status.value}


BYPASSED = CacheLookup(CacheStatus.BYPASS)


@dataclass(frozen=True)
class CachePolicy:
    """Which model ids are cached and for how long (a pipeline's or model alias's `cache: {ttl_s}`),
    and the config's fingerprint, part of every key."""

    ttl_s: Mapping[str, float]
    namespace: str


class ResponseCache:
    def __init__(
        self,
        store: CacheStore,
        policy: CachePolicy,
        observer: CacheObserver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._policy = policy
        self._observer = observer
        self._clock = clock  # the wall clock: entries' ages are shared by processes and replicas

    async def lookup(self, request: ChatCompletionRequest, caller: Caller, model_id: str) -> CacheLookup:
        """Bypassed when the model has no cache, the request says `moa.cache: false`, or it asks to
        see the run itself (`moa.include_proposals`, `moa.stream_events`: a hit makes no call to show);
        also when the store cannot be reached (said in the log and `moa_cache_errors_total`)."""
        ttl_s = self._policy.ttl_s.get(model_id)
        options = request.moa
        if ttl_s is None or not options.cache or options.include_proposals or options.stream_events:
            return BYPASSED
        key = cache_key(request, caller, self._policy.namespace)
        try:
            raw = await self._store.get(key)
        except CacheUnavailable as exc:
            logger.warning("response cache: lookup failed: %s", exc)
            self._observer.cache_error("get")
            return BYPASSED
        result = None if raw is None else decode(raw, self._clock())
        if result is None or result.cache_hit is None:
            self._observer.cache_lookup(model_id, "miss", 0.0)
            return CacheLookup(CacheStatus.MISS, key, ttl_s)
        self._observer.cache_lookup(model_id, "hit", result.cache_hit.saved_usd)
        return CacheLookup(CacheStatus.HIT, key, ttl_s, result)

    def answered(self, lookup: CacheLookup, stream: bool) -> AsyncGenerator[Event, None] | None:
        """A hit's events, else None."""
        return None if lookup.hit is None else replayed(lookup.hit, stream)

    async def storing(
        self, lookup: CacheLookup, events: AsyncGenerator[Event, None]
    ) -> AsyncGenerator[Event, None]:
        """`events`, the run's result stored before its end is passed on (so the next identical
        request finds it), if the run finished and the answer is worth keeping. A run that failed, was
        cut short or whose client left stores nothing."""
        async with aclosing(events):
            async for event in events:
                if isinstance(event, RunFinished) and storable(event.result):
                    await self._put(lookup, event.result)
                yield event

    async def _put(self, lookup: CacheLookup, result: MoaResult) -> None:
        try:
            await self._store.put(lookup.key, encode(result, self._clock()), lookup.ttl_s)
        except CacheUnavailable as exc:  # the answer still goes out; only the next request pays again
            logger.warning("response cache: store failed: %s", exc)
            self._observer.cache_error("put")

    async def close(self) -> None:
        await self._store.close()

    def describe(self) -> str:
        return self._store.describe()
