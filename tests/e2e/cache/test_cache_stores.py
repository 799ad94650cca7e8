"""The response cache's stores over real HTTP: the memory store evicts the least recently used answer
past MOA_CACHE_MAX_BYTES; Redis (a real redis-server) and an SQLite file are shared by two gateways, so
an answer one stored is a hit on the other with no upstream call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from moa_gateway.settings import Settings
from tests.support.cache import ask, cache_config, upstream_calls
from tests.support.gateways import recording_upstream, serve_gateway
from tests.support.metrics import scrape
from tests.support.recording import Recorder
from tests.support.redis_server import redis_server

KEY_A, KEY_B = "store-key-a-0123456789", "store-key-b-0123456789"
# An answer of 20 tokens is kept in about 600 bytes: two fit in 1500, a third evicts one.
SHORT = {"max_tokens": 20}
MAX_BYTES = 1500


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, Recorder]]:
    with recording_upstream() as upstream:
        yield upstream


@contextmanager
def gateways(upstream_url: str, count: int, settings: Settings) -> Iterator[list[str]]:
    """The URLs of `count` gateways on one upstream, with these settings."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(serve_gateway(cache_config(upstream_url), settings)).url for _ in range(count)
        ]


def keyed(**settings: Any) -> Settings:
    return Settings(api_keys=SecretStr(f"{KEY_A},{KEY_B}"), **settings)


def test_the_memory_store_evicts_the_least_recently_used_answer_past_its_bytes(
    upstream: tuple[str, Recorder],
) -> None:
    upstream_url, recorder = upstream
    with gateways(upstream_url, 1, keyed(cache_max_bytes=MAX_BYTES)) as (url,):
        ask(url, KEY_A, "cached", "first question", **SHORT)
        ask(url, KEY_A, "cached", "second question", **SHORT)
        assert ask(url, KEY_A, "cached", "first question", **SHORT).cache == "hit"  # now the most recent

        ask(url, KEY_A, "cached", "third question", **SHORT)  # over the bytes: the second goes
        recorder.clear()
        first = ask(url, KEY_A, "cached", "first question", **SHORT)
        second = ask(url, KEY_A, "cached", "second question", **SHORT)
        scraped = scrape(url)

    assert (first.cache, second.cache) == ("hit", "miss")
    assert upstream_calls(recorder) == 4  # the second question's run only
    assert scraped.value("moa_cache_evictions_total", reason="size") >= 1
    assert 0 < scraped.value("moa_cache_bytes") <= MAX_BYTES


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def test_redis_is_shared_by_two_gateways(upstream: tuple[str, Recorder], redis_url: str) -> None:
    upstream_url, recorder = upstream
    with gateways(upstream_url, 2, keyed(cache=SecretStr(redis_url))) as (one, two):
        stored = ask(one, KEY_A, "cached", "Shared through Redis?")
        recorder.clear()
        replayed = ask(two, KEY_A, "cached", "Shared through Redis?")
        assert upstream_calls(recorder) == 0
        other_key = ask(two, KEY_B, "cached", "Shared through Redis?")

    assert (stored.cache, replayed.cache, other_key.cache) == ("miss", "hit", "miss")
    assert replayed.text == stored.text


def test_an_sqlite_file_is_shared_by_two_gateways(upstream: tuple[str, Recorder], tmp_path: Path) -> None:
    upstream_url, recorder = upstream
    location = SecretStr(f"sqlite:///{tmp_path / 'cache.db'}")
    with gateways(upstream_url, 2, keyed(cache=location)) as (one, two):
        stored = ask(one, KEY_A, "cached", "Shared through SQLite?")
        recorder.clear()
        replayed = ask(two, KEY_A, "cached", "Shared through SQLite?")
        assert upstream_calls(recorder) == 0
        other_key = ask(two, KEY_B, "cached", "Shared through SQLite?")

    assert (stored.cache, replayed.cache, other_key.cache) == ("miss", "hit", "miss")
    assert replayed.text == stored.text
