"""The response cache's memory and SQLite stores: each answer gone after its own TTL; past the byte
limit the least recently used goes first (a hit counts as a use); an answer larger than the whole
store is not kept; evictions and bytes are reported to the observer. And which answers are stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pytest

from moa_gateway.core.reports import Degraded
from moa_gateway.core.types import Answer, CallRecord, Choice, MoaResult, Usage
from moa_gateway.service.cache.entry import decode, encode, storable
from moa_gateway.service.cache.memory import MemoryCacheStore
from moa_gateway.service.cache.sqlite_store import SqliteCacheStore
from moa_gateway.service.cache.store import CacheStore, entry_size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Observed:
    evicted: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def cache_lookup(self, model: str, outcome: Literal["hit", "miss"], saved_usd: float) -> None:
        return None

    def cache_evicted(self, reason: Literal["size", "expired"], entries: int) -> None:
        self.evicted[reason] = self.evicted.get(reason, 0) + entries

    def cache_bytes(self, change: int) -> None:
        self.bytes += change

    def cache_error(self, operation: Literal["get", "put"]) -> None:
        return None


VALUE = b"x" * 300
ENTRY = entry_size("k1", VALUE)  # what one entry counts against the bytes


def stores(tmp_path: Path, clock: Clock, observed: Observed, max_bytes: int) -> dict[str, CacheStore]:
    return {
        "memory": MemoryCacheStore(max_bytes, observed, clock),
        "sqlite": SqliteCacheStore(tmp_path / "cache.db", max_bytes, observed, clock),
    }


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_an_answer_is_gone_after_its_own_ttl(tmp_path: Path, kind: str) -> None:
    clock = Clock()
    store = stores(tmp_path, clock, Observed(), 1 << 20)[kind]
    await store.put("short", VALUE, 10)
    await store.put("long", VALUE, 100)
    clock.now += 11

    assert await store.get("short") is None
    assert await store.get("long") == VALUE
    await store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_past_the_bytes_the_least_recently_used_goes_first(tmp_path: Path, kind: str) -> None:
    clock, observed = Clock(), Observed()
    store = stores(tmp_path, clock, observed, 2 * ENTRY + 100)[kind]  # two entries fit
    await store.put("k1", VALUE, 60)
    clock.now += 1
    await store.put("k2", VALUE, 60)
    clock.now += 1
    assert await store.get("k1") == VALUE  # k1 is now the most recently used
    clock.now += 1
    await store.put("k3", VALUE, 60)

    assert await store.get("k2") is None
    assert await store.get("k1") == VALUE and await store.get("k3") == VALUE
    assert observed.evicted == {"size": 1}
    await store.close()


async def test_the_memory_store_reports_its_bytes_and_keeps_no_oversized_answer() -> None:
    observed = Observed()
    store = MemoryCacheStore(2048, observed, Clock())
    await store.put("k1", VALUE, 60)
    await store.put("big", b"x" * 4096, 60)

    assert await store.get("big") is None
    assert observed.bytes == store.bytes == ENTRY
    await store.close()
    assert observed.bytes == 0


def result(**changes: object) -> MoaResult:
    call = CallRecord(2, "aggregator", "omega", "ok", 0.1, Usage(10, 5), 0.002)
    answer = Answer("Two.", "stop", Usage(10, 5), more_choices=(Choice("Three.", "stop"),))
    return replace(MoaResult("moa", answer, [call], answered_by="omega"), **changes)  # type: ignore[arg-type]


def test_a_stored_answer_decodes_as_a_run_that_spent_nothing_and_saved_its_cost() -> None:
    replayed = decode(encode(result(), stored_at=100.0), now=130.0)

    assert replayed is not None and replayed.cache_hit is not None
    assert [c.text for c in replayed.answer.choices()] == ["Two.", "Three."]
    assert replayed.calls == [] and replayed.cost_usd == 0 and replayed.usage == Usage()
    assert replayed.cache_hit.saved_usd == 0.002 and replayed.cache_hit.age_s == 30.0
    assert (replayed.cache_hit.saved_prompt_tokens, replayed.cache_hit.saved_completion_tokens) == (10, 5)


@pytest.mark.parametrize(
    "changes",
    [
        {"degraded": Degraded.AGGREGATOR_FAILED},
        {"dropped": ["alpha"]},
        {"calls": [CallRecord(1, "proposer", "alpha", "error", 0.1)]},
        {"calls": []},
        {"answer": Answer("", "content_filter", Usage())},
    ],
)
def test_only_a_complete_answer_of_calls_that_all_answered_is_stored(changes: dict[str, object]) -> None:
    assert storable(result())
    assert not storable(result(**changes))
