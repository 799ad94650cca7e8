"""The backend's call boundary over an in-memory transport (httpx.MockTransport): the half-open trial is
given back whatever ends a call, an unencodable request is rejected without counting against the model,
and an exception of ours during a call fails that call as a `bad_response`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from moa_gateway.config import parse_config
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.types import Answer, CallSpec, Delta
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.telemetry.observer import TelemetryObserver
from moa_gateway.upstream.backend import UpstreamBackend
from moa_gateway.upstream.httpx_client import HttpxClient
from tests.support.backend import complete, providers_of, stream
from tests.support.metrics import Scrape

ASK = [{"role": "user", "content": "hi"}]
# Long enough that a loaded machine (CI, parallel jobs) does not see the breaker half-open before the
# test checks that it opened: at 10 ms these tests failed under load.
COOLDOWN_S = 0.5
DEEP: Any = {}
for _ in range(300):
    DEEP = {"nested": DEEP}
Handler = Callable[[httpx.Request], Any]


def spec(**params: Any) -> CallSpec:
    return CallSpec(1, "proposer", "m", ASK, params)


def answer(text: str = "ok") -> httpx.Response:
    message = {"role": "assistant", "content": text}
    return httpx.Response(200, json={"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})


@contextlib.asynccontextmanager
async def backend_with(handler: Handler) -> AsyncIterator[tuple[UpstreamBackend, Metrics]]:
    config = parse_config(
        {
            "providers": {
                "p": {"type": "openai", "base_url": "http://upstream.test/v1", "retries": {"max_attempts": 1}}
            },
            "models": {
                "m": {"provider": "p", "circuit_breaker": {"failure_threshold": 1, "cooldown_s": COOLDOWN_S}}
            },
        },
        "test",
    )
    metrics = Metrics()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        yield (
            UpstreamBackend(config, HttpxClient(client), TelemetryObserver(metrics, providers_of(config))),
            metrics,
        )


async def half_open(backend: UpstreamBackend) -> None:
    """Fail once (the threshold is 1), wait out the cool-down, and take the trial."""
    with contextlib.suppress(Failure):
        await complete(backend, spec(fail=True))
    assert backend.circuit_states()["m"] == "open"
    await asyncio.sleep(COOLDOWN_S * 2)
    assert backend.admit("m"), "the trial"
    assert not backend.admit("m"), "only one trial at a time"


async def test_an_unencodable_request_is_rejected_and_gives_the_trial_back() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500) if b'"fail":true' in request.content else answer()

    async with backend_with(handler) as (backend, metrics):
        await half_open(backend)
        errors_before = Scrape(metrics.render().decode()).value("moa_upstream_errors_total", model="m")

        with pytest.raises(Failure, match=r"model m: the request cannot be encoded .*Recursion") as caught:
            await complete(backend, spec(response_format=DEEP))
        assert caught.value.kind == FailureKind.REJECTED, "the request's fault, not the model's"

        assert len(calls) == 1, "no call was made for it"
        assert (
            Scrape(metrics.render().decode()).value("moa_upstream_errors_total", model="m") == errors_before
        )
        assert backend.admit("m"), "the trial is free again"
        assert isinstance(await complete(backend, spec()), Answer)
        assert backend.circuit_states()["m"] == "closed"


async def test_an_unencodable_streamed_request_neither_counts_nor_keeps_the_trial() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500) if b'"fail":true' in request.content else answer()

    async with backend_with(handler) as (backend, _):
        await half_open(backend)
        for _ in range(5):
            with pytest.raises(Failure) as caught:
                async for _piece in stream(backend, spec(response_format=DEEP)):
                    pass
            assert caught.value.kind == FailureKind.REJECTED

        assert backend.admit("m")


async def test_a_cancelled_trial_is_given_back() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if b'"fail":true' in request.content:
            return httpx.Response(500)
        await asyncio.sleep(10)
        return answer()

    async with backend_with(handler) as (backend, _):
        await half_open(backend)
        task = asyncio.create_task(complete(backend, spec()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert backend.admit("m")


async def test_a_stream_closed_early_gives_the_trial_back() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b'"fail":true' in request.content:
            return httpx.Response(500)
        frames = b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n' * 3
        return httpx.Response(200, content=frames, headers={"content-type": "text/event-stream"})

    async with backend_with(handler) as (backend, _):
        await half_open(backend)
        pieces = stream(backend, spec())
        assert await anext(pieces) == Delta(text="Hi")
        await pieces.aclose()

        assert backend.admit("m")


async def test_an_exception_of_ours_fails_the_call_as_bad_response(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if b'"fail":true' in request.content:
            return httpx.Response(500)
        raise RuntimeError("a bug somewhere")

    async with backend_with(handler) as (backend, metrics):
        await half_open(backend)
        with caplog.at_level(logging.ERROR), pytest.raises(Failure) as caught:
            await complete(backend, spec())

        assert caught.value.kind == "bad_response"
        assert caught.value.message == "model m: the provider's answer could not be handled (RuntimeError)"
        assert "failed unexpectedly: RuntimeError: a bug somewhere" in caplog.text
        assert backend.circuit_states()["m"] == "open", "the trial failed: open again, not stuck half-open"
        scrape = Scrape(metrics.render().decode())
        assert scrape.value("moa_upstream_errors_total", model="m", kind="bad_response") == 1


async def test_no_retry_starts_once_timeout_s_has_passed() -> None:
    calls: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        await asyncio.sleep(0.15)
        return httpx.Response(503, json={"error": {"message": "busy"}})

    provider = {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "timeout_s": 0.2,
        "retries": {"max_attempts": 5, "base_delay_s": 0},
    }
    config = parse_config({"providers": {"p": provider}, "models": {"m": {"provider": "p"}}}, "test")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = UpstreamBackend(
            config, HttpxClient(client), TelemetryObserver(Metrics(), providers_of(config))
        )
        with pytest.raises(Failure) as caught:
            await complete(backend, spec())

    assert caught.value.kind == FailureKind.SERVER_ERROR
    assert len(calls) == 2, "the second attempt began within timeout_s, a third would not"
