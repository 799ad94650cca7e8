"""The upstream pool: its size derived from admission and the widest layer, a provider's cap and the total
holding calls back (never more connections than allowed, each wait measured), and nothing leaked by a
call cancelled while it waited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.core.types import CallSpec
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.telemetry.observer import TelemetryObserver
from moa_gateway.upstream.backend import UpstreamBackend
from moa_gateway.upstream.httpx_client import HttpxClient
from moa_gateway.upstream.pool import ConnectionPool, PoolSize, pool_size
from moa_gateway.upstream.providers.kinds import connection_caps
from tests.support.backend import complete, providers_of
from tests.support.metrics import Scrape

ASK = [{"role": "user", "content": "hi"}]


def config_with(providers: dict[str, Any], pipelines: dict[str, Any] | None = None) -> GatewayConfig:
    models = {f"{name}-m": {"provider": name} for name in providers}
    models |= {f"x{i}": {"provider": next(iter(providers))} for i in range(6)}
    return parse_config({"providers": providers, "models": models, "pipelines": pipelines or {}}, "test")


HTTP = {"type": "openai", "base_url": "http://upstream.test/v1", "retries": {"max_attempts": 1}}


def test_by_default_every_admitted_request_can_hold_a_connection_per_call_of_its_widest_layer() -> None:
    pipelines = {
        "wide": {"layers": [{"proposers": ["x0", "x1", "x2", "x3", "x4"]}, {"proposers": ["x0"]}], "aggregator": "x5"},
        "narrow": {"layers": [{"proposers": ["x0", "x1"]}], "aggregator": "x5"},
    }  # fmt: skip
    config = config_with({"p": HTTP}, pipelines)

    assert pool_size(config, max_concurrent_requests=100, max_proposers=4, total=None, caps={}).total == 500
    # a request's own `moa.layers` may be wider than any pipeline, up to MOA_MAX_PROPOSERS
    assert pool_size(config, max_concurrent_requests=100, max_proposers=8, total=None, caps={}).total == 800


def test_shadow_evaluations_run_outside_admission_and_get_connections_of_their_own() -> None:
    shadowed = {
        "layers": [{"proposers": ["x0", "x1", "x2"]}],
        "aggregator": "x5",
        "shadow": {"baseline": "x0", "judge": "x1", "max_concurrent": 4},
    }
    config = config_with({"p": HTTP}, {"moa": shadowed})

    assert (
        pool_size(config, max_concurrent_requests=10, max_proposers=1, total=None, caps={}).total
        == (10 + 4) * 3
    )


def test_a_total_below_what_admission_can_use_is_kept_and_named_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = config_with(
        {"p": HTTP}, {"moa": {"layers": [{"proposers": ["x0", "x1", "x2"]}], "aggregator": "x5"}}
    )

    with caplog.at_level(logging.WARNING):
        size = pool_size(config, max_concurrent_requests=256, max_proposers=3, total=300, caps={})

    assert size.total == 300
    assert "MOA_UPSTREAM_MAX_CONNECTIONS=300 is below the 768 connections" in caplog.text
    assert "lower MOA_MAX_CONCURRENT_REQUESTS to 100" in caplog.text


def test_provider_caps_come_from_the_config() -> None:
    config = config_with({"small": {**HTTP, "max_connections": 2}, "big": HTTP, "sim": {"type": "simulated"}})

    size = pool_size(
        config, max_concurrent_requests=10, max_proposers=1, total=None, caps=connection_caps(config)
    )

    assert size.per_provider == {"small": 2}


class Upstream:
    """An in-memory upstream that holds every call until released, counting how many it holds at once."""

    def __init__(self) -> None:
        self.holding = 0
        self.most = 0
        self.release = asyncio.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.holding += 1
        self.most = max(self.most, self.holding)
        try:
            await self.release.wait()
        finally:
            self.holding -= 1
        message = {"role": "assistant", "content": "ok"}
        return httpx.Response(
            200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
        )


@contextlib.asynccontextmanager
async def backend(
    providers: dict[str, Any], total: int, upstream: Upstream
) -> AsyncIterator[tuple[UpstreamBackend, Metrics]]:
    config = config_with(providers)
    metrics = Metrics()
    size = pool_size(
        config, max_concurrent_requests=total, max_proposers=1, total=total, caps=connection_caps(config)
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream.handler)) as client:
        observer = TelemetryObserver(metrics, providers_of(config))
        yield (
            UpstreamBackend(config, HttpxClient(client), observer, pool=ConnectionPool(size, metrics)),
            metrics,
        )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def scrape(metrics: Metrics) -> Scrape:
    return Scrape(metrics.render().decode())


async def test_a_providers_cap_holds_its_calls_back_and_each_wait_is_measured() -> None:
    upstream = Upstream()
    async with backend({"small": {**HTTP, "max_connections": 2}}, 100, upstream) as (gateway, metrics):
        calls = [
            asyncio.create_task(complete(gateway, CallSpec(1, "proposer", "small-m", ASK, {})))
            for _ in range(5)
        ]
        await settle()
        in_use = scrape(metrics).value("moa_upstream_connections_in_use", provider="small")
        upstream.release.set()
        await asyncio.gather(*calls)

    after = scrape(metrics)
    assert upstream.most == 2, "never more than the provider's cap at once"
    assert in_use == 2
    assert after.value("moa_upstream_connections_in_use", provider="small") == 0
    assert after.value("moa_upstream_connection_wait_seconds_count", provider="small") == 5
    waited = after.value("moa_upstream_connection_wait_seconds_sum", provider="small")
    assert waited > 0, "three calls waited for a connection"


async def test_the_total_is_shared_by_every_provider() -> None:
    upstream = Upstream()
    async with backend({"a": HTTP, "b": HTTP}, 3, upstream) as (gateway, metrics):
        calls = [
            asyncio.create_task(complete(gateway, CallSpec(1, "proposer", model, ASK, {})))
            for model in ("a-m", "b-m", "a-m", "b-m", "a-m")
        ]
        await settle()
        held = upstream.holding
        upstream.release.set()
        await asyncio.gather(*calls)

    assert held == 3 and upstream.most == 3
    assert scrape(metrics).value("moa_upstream_connections_in_use") == 0


async def test_a_call_cancelled_while_waiting_takes_no_connection_with_it() -> None:
    pool = ConnectionPool(PoolSize(total=1, per_provider={"p": 1}))
    await pool.acquire("p")
    waiting = asyncio.create_task(pool.acquire("p"))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    pool.release("p")

    async with asyncio.timeout(1):  # both the cap and the total are free again
        await pool.acquire("p")
