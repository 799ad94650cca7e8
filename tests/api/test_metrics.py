"""/metrics after known traffic: exact counts, token and cost sums per model and role, failures."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.core.types import CallSpec
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.telemetry.observer import TelemetryObserver
from moa_gateway.upstream.backend import UpstreamBackend
from moa_gateway.upstream.httpx_client import HttpxClient
from tests.support.asks import ASK
from tests.support.backend import complete, providers_of
from tests.support.configs import simulated_config, topology
from tests.support.metrics import Scrape

PRICES = {
    "alpha": (1.0, 2.0),
    "beta": (2.0, 3.0),
    "gamma": (3.0, 4.0),
    "omega": (4.0, 5.0),
}  # conftest topology


def client_for(config: GatewayConfig) -> TestClient:
    return TestClient(create_app(Settings(), config), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def traffic() -> Iterator[tuple[Scrape, list[dict[str, Any]]]]:
    """Two MoA requests, one streamed MoA request and one direct call, each call capped at 5 tokens."""
    with client_for(simulated_config()) as client:
        bodies = [
            client.post(
                "/v1/chat/completions", json={"model": "moa-1", "messages": ASK, "max_tokens": 5}
            ).json()
        ]
        bodies.append(
            client.post(
                "/v1/chat/completions", json={"model": "moa-1", "messages": ASK, "max_tokens": 5}
            ).json()
        )
        stream = {
            "model": "moa-1",
            "messages": ASK,
            "max_tokens": 5,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with client.stream("POST", "/v1/chat/completions", json=stream) as response:
            frames = [f for f in response.read().decode().split("\n\n") if f.startswith("data: {")]
        bodies.append(json.loads(frames[-1].removeprefix("data: ")))
        bodies.append(
            client.post(
                "/v1/chat/completions", json={"model": "beta", "messages": ASK, "max_tokens": 3}
            ).json()
        )
        yield Scrape(client.get("/metrics").text), bodies


def test_every_upstream_call_is_observed_once_per_model_and_role(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, _ = traffic
    count = "moa_upstream_request_duration_seconds_count"

    for model in ["alpha", "beta", "gamma"]:
        assert scrape.value(count, provider="sim", model=model, role="proposer", outcome="ok") == 3
    assert scrape.value(count, model="omega", role="aggregator", outcome="ok") == 3
    assert scrape.value(count, model="beta", role="direct", outcome="ok") == 1
    assert scrape.value(count) == 13


def test_output_tokens_are_exact(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, _ = traffic
    tokens = "moa_upstream_tokens_total"

    for model in ["alpha", "beta", "gamma"]:  # 3 requests x 5 tokens
        assert scrape.value(tokens, model=model, role="proposer", type="output") == 15
    assert scrape.value(tokens, model="omega", role="aggregator", type="output") == 15
    assert scrape.value(tokens, model="beta", role="direct", type="output") == 3


def test_input_tokens_and_cost_match_what_the_responses_reported(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, bodies = traffic
    calls = [call for body in bodies for call in body["moa"]["calls"]]

    for model, (price_in, price_out) in PRICES.items():
        for role in ["proposer", "aggregator", "direct"]:
            mine = [c for c in calls if c["model"] == model and c["role"] == role]
            prompt = sum(c["prompt_tokens"] for c in mine)
            completion = sum(c["completion_tokens"] for c in mine)
            assert scrape.value("moa_upstream_tokens_total", model=model, role=role, type="input") == prompt
            expected_cost = (prompt * price_in + completion * price_out) / 1e6
            assert scrape.value("moa_upstream_cost_usd_total", model=model, role=role) == pytest.approx(
                expected_cost
            )
    total_cost = scrape.value("moa_upstream_cost_usd_total")
    assert total_cost == pytest.approx(sum(b["moa"]["cost_usd"] for b in bodies))


def test_cost_per_request_of_a_pipeline_is_readable_from_metrics(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, bodies = traffic
    moa_costs = [b["moa"]["cost_usd"] for b in bodies if b["moa"]["pipeline"] == "moa-1"]

    assert scrape.value("moa_request_cost_usd_count", model="moa-1") == 3
    assert scrape.value("moa_request_cost_usd_sum", model="moa-1") == pytest.approx(sum(moa_costs))


def test_ttft_is_observed_for_streamed_calls_only(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, _ = traffic

    assert (
        scrape.value("moa_upstream_time_to_first_token_seconds_count", model="omega", role="aggregator") == 1
    )
    assert scrape.value("moa_upstream_time_to_first_token_seconds_count", role="proposer") == 0
    assert scrape.value("moa_response_time_to_first_token_seconds_count", model="moa-1") == 1


def test_request_metrics_count_by_model_status_and_stream(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, _ = traffic

    assert scrape.value("moa_requests_total", model="moa-1", status="200") == 3
    assert scrape.value("moa_requests_total", model="beta", status="200") == 1
    assert scrape.value("moa_request_duration_seconds_count", model="moa-1", stream="true") == 1
    assert scrape.value("moa_request_duration_seconds_count", model="moa-1", stream="false") == 2
    assert scrape.value("moa_overhead_seconds_count", model="moa-1") == 3
    assert scrape.value("moa_requests_in_flight") == 0


def test_latency_buckets_follow_the_opentelemetry_genai_ladder(traffic: tuple[Scrape, list[Any]]) -> None:
    scrape, _ = traffic
    bounds = sorted(
        {
            float(s.labels["le"])
            for s in scrape.samples
            if s.name == "moa_upstream_request_duration_seconds_bucket"
        }
    )

    assert bounds == [0.01 * 2**i for i in range(14)] + [float("inf")]


def test_failed_and_timed_out_calls_are_counted_with_their_outcome() -> None:
    providers = {
        "sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0, "timeout_s": 0.05},
        "down": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "retries": {"base_delay_s": 0.001}},
    }
    extra = {
        "gamma": {"provider": "down"},  # connection refused
        "beta": {"provider": "sim", "params": {"simulate": {"ttft_ms": 2000}}},  # times out after 50 ms
    }
    config = parse_config({"providers": providers, **topology("sim", extra_models=extra)}, "test")
    with client_for(config) as client:
        body = client.post("/v1/chat/completions", json={"model": "moa-1", "messages": ASK}).json()
        scrape = Scrape(client.get("/metrics").text)

    assert [c["status"] for c in body["moa"]["calls"]] == ["ok", "error", "error", "ok"]
    duration = "moa_upstream_request_duration_seconds_count"
    assert scrape.value(duration, provider="down", model="gamma", role="proposer", outcome="error") == 1
    assert scrape.value(duration, model="beta", role="proposer", outcome="timeout") == 1
    errors = "moa_upstream_errors_total"
    # a refused connection is retried: 3 attempts (the default), each one counted as an error
    assert scrape.value(errors, provider="down", model="gamma", role="proposer", kind="connection") == 3
    assert scrape.value("moa_upstream_retries_total", provider="down", model="gamma") == 2
    assert scrape.value(errors, provider="sim", model="beta", role="proposer", kind="timeout") == 1
    assert scrape.value("moa_upstream_retries_total", model="beta") == 0, "our own deadline is not retried"
    assert scrape.value("moa_proposers_dropped_total", pipeline="moa-1", model="gamma") == 1
    assert scrape.value("moa_proposers_dropped_total", pipeline="moa-1", model="beta") == 1
    assert scrape.value("moa_upstream_tokens_total", model="gamma") == 0, "a failed call adds no tokens"


def test_failed_requests_are_counted_and_request_text_never_becomes_a_label() -> None:
    with client_for(simulated_config()) as client:
        client.post("/v1/chat/completions", json={"model": "private-model-name-9f2", "messages": ASK})
        client.post("/v1/chat/completions", json={"model": "moa", "messages": []})
        text = client.get("/metrics").text
    scrape = Scrape(text)

    assert scrape.value("moa_requests_total", model="unknown", status="404") == 1
    assert scrape.value("moa_requests_total", model="unknown", status="400") == 1
    assert "private-model-name-9f2" not in text


async def test_a_cancelled_call_is_observed_as_cancelled() -> None:
    config = simulated_config(ttft_ms=5000)
    metrics = Metrics()
    async with httpx.AsyncClient() as client:
        backend = UpstreamBackend(
            config, HttpxClient(client), TelemetryObserver(metrics, providers_of(config))
        )
        spec = CallSpec(1, "proposer", "alpha", ASK, {})
        task = asyncio.create_task(complete(backend, spec))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    scrape = Scrape(metrics.render().decode())

    assert (
        scrape.value("moa_upstream_request_duration_seconds_count", model="alpha", outcome="cancelled") == 1
    )


def test_models_without_a_price_are_named_once_at_start(caplog: pytest.LogCaptureFixture) -> None:
    free = {"alpha": {"provider": "sim"}, "omega": {"provider": "sim"}}
    with caplog.at_level(logging.WARNING):
        create_app(Settings(), simulated_config(extra_models=free))

    warnings = [r.getMessage() for r in caplog.records if "without a price" in r.getMessage()]
    assert warnings == ["models without a price, counted as free: alpha, omega"]
