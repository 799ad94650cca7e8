"""Shadow evaluation on live traffic, over real HTTP: the client gets its answer before the slow baseline
and the judge have done anything, the verdict then shows in the metrics, with the calls counted under
roles `shadow` and `judge`; beyond `max_concurrent`, at shutdown and outside live traffic it is dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.runtime import open_runtime
from moa_gateway.service.chat import AfterResponse
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire.requests import ChatCompletionRequest
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape, scrape
from tests.support.servers import ServerThread

BASELINE_TTFT_MS = 1500
QUESTION = "Why is the sky blue?"
ASK = {"model": "moa", "messages": [{"role": "user", "content": QUESTION}]}


def shadow_config(**shadow: Any) -> GatewayConfig:
    models: dict[str, Any] = {
        name: {"provider": "sim", "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
        for name in ["alpha", "beta", "omega", "slow", "judge", "broken"]
    }
    models["broken"]["params"] = {"simulate": {"fault": "error_500"}}
    models["slow"]["params"] = {"simulate": {"ttft_ms": BASELINE_TTFT_MS}}  # the baseline takes its time
    models["judge"]["params"] = {"simulate": {"prefer": "omega"}}  # the pipeline's answer always wins
    pipeline = {
        "layers": [{"proposers": ["alpha", "beta"]}],
        "aggregator": "omega",
        "shadow": {"baseline": "slow", "judge": "judge", "sample_rate": 1.0, **shadow},
    }
    retries = {"max_attempts": 1}
    quick = {"baseline": "alpha", "judge": "judge", "sample_rate": 1.0}  # a shadow that ends within ms
    data = {
        "providers": {"sim": {"type": "simulated", "ttft_ms": 0, "tokens_per_s": 0, "retries": retries}},
        "models": models,
        "pipelines": {"moa": pipeline, "moa-broken": {**pipeline, "aggregator": "broken", "shadow": quick}},
    }
    return parse_config(data, "test")


@pytest.fixture
def gateway() -> Iterator[ServerThread]:
    with serve_gateway(shadow_config(max_concurrent=1)) as server:
        yield server


def wait_for(server: ServerThread, name: str, timeout_s: float = 10.0, **labels: str) -> Scrape:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metrics = scrape(server.url)
        if metrics.value(name, **labels) > 0:
            return metrics
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels} did not appear")


VERDICT = "moa_eval_verdicts_total"
CALLS = "moa_upstream_request_duration_seconds_count"


def answer_text(body: bytes, stream: bool) -> str:
    """The answer's text: the message's, or a stream's deltas joined (its first token has a frame of its own)."""
    if not stream:
        return str(orjson.loads(body)["choices"][0]["message"]["content"])
    chunks = [orjson.loads(line[6:]) for line in body.splitlines() if line.startswith(b"data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("stream", [False, True])
def test_the_client_is_answered_before_the_shadow_work_and_the_verdict_follows(
    gateway: ServerThread, stream: bool
) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        with client.stream("POST", "/v1/chat/completions", json={**ASK, "stream": stream}) as response:
            body = response.read()
        answered = scrape(gateway.url)  # the moment the client has its whole answer

        assert response.status_code == 200 and "[omega]" in answer_text(body, stream)
        # Nothing of the shadow had finished by then: not the (slow) baseline, not the judge, no verdict.
        assert answered.value(CALLS, role="shadow") == 0 and answered.value(CALLS, role="judge") == 0
        assert answered.value(VERDICT) == 0
        assert answered.value(CALLS, role="aggregator") == 1

        done = wait_for(gateway, VERDICT, pipeline="moa", baseline="slow", verdict="win")

    assert done.value(VERDICT) == 1  # one verdict: win, nothing else
    assert done.value(CALLS, role="shadow", model="slow", outcome="ok") == 1
    assert done.value(CALLS, role="judge", model="judge", outcome="ok") == 2  # both orders
    assert done.value("moa_upstream_cost_usd_total", role="judge") > 0
    assert done.value("moa_upstream_cost_usd_total", role="shadow") > 0
    assert done.value(CALLS, role="aggregator") == 1  # the client's own calls are as they were


@pytest.mark.parametrize("api", ["chat", "completions", "responses"])
def test_every_api_hands_its_live_traffic_to_the_shadow(gateway: ServerThread, api: str) -> None:
    # Each route passes its record's after-response list to the service: a route that forgot would
    # answer as before but its traffic would never be evaluated.
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    if api == "chat":
        asked = client.chat.completions.create(model="moa", messages=[{"role": "user", "content": QUESTION}])
        text = asked.choices[0].message.content
    elif api == "completions":
        text = client.completions.create(model="moa", prompt=QUESTION).choices[0].text
    else:
        text = client.responses.create(model="moa", input=QUESTION).output_text

    assert text is not None and "[omega]" in text
    done = wait_for(gateway, VERDICT, pipeline="moa", baseline="slow", verdict="win")
    assert done.value(VERDICT) == 1 and done.value(CALLS, role="shadow", model="slow", outcome="ok") == 1


def test_beyond_max_concurrent_new_shadow_work_is_dropped_not_queued(gateway: ServerThread) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        first = client.post("/v1/chat/completions", json=ASK)
        second = client.post("/v1/chat/completions", json=ASK)  # while the first's baseline still runs

        assert first.status_code == second.status_code == 200
        metrics = wait_for(gateway, "moa_shadow_dropped_total", pipeline="moa", reason="capacity")
        wait_for(gateway, VERDICT, verdict="win")
        time.sleep(0.3)  # a second evaluation, started with the second response, would have ended by now
        final = scrape(gateway.url)

    assert metrics.value("moa_shadow_dropped_total") == 1
    assert final.value(VERDICT) == 1 and final.value(CALLS, role="shadow") == 1


def test_failed_requests_are_not_shadowed(gateway: ServerThread) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        failed = client.post("/v1/chat/completions", json={**ASK, "model": "moa-broken"})

    time.sleep(0.3)  # long enough for a (quick) shadow evaluation to have ended
    metrics = scrape(gateway.url)
    assert failed.status_code == 502 and metrics.value(CALLS, role="aggregator", outcome="error") == 1
    assert metrics.value(CALLS, role="shadow") == 0 and metrics.value(CALLS, role="judge") == 0
    assert metrics.value(VERDICT) == 0 and metrics.value("moa_shadow_dropped_total") == 0


async def test_shadow_work_runs_only_for_live_traffic_and_is_dropped_at_shutdown() -> None:
    metrics = Metrics()
    request = ChatCompletionRequest.model_validate(ASK)
    async with open_runtime(Settings(), shadow_config(), metrics) as runtime:
        # In-process (an eval, a script): no HTTP edge to defer to, so no shadow work at all.
        await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS))
        assert runtime.shadow is not None and runtime.shadow.running == 0

        deferred: AfterResponse = []  # what the HTTP edge keeps on a request's record
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        assert len(deferred) == 1
        deferred[0](result)  # the response has been sent: start it
        assert runtime.shadow.running == 1
        await asyncio.sleep(0.2)  # the baseline is answering (it takes 1.5 s)
    # Leaving the runtime (shutdown) cancelled it while the baseline was still answering.
    scraped = Scrape(metrics.render().decode())
    assert scraped.value("moa_shadow_dropped_total", pipeline="moa", reason="shutdown") == 1
    assert scraped.value(VERDICT) == 0
    assert scraped.value(CALLS, role="shadow", outcome="cancelled") == 1


async def test_a_draining_gateway_starts_no_shadow_work() -> None:
    metrics = Metrics()
    request = ChatCompletionRequest.model_validate(ASK)
    async with open_runtime(Settings(), shadow_config(), metrics) as runtime:
        deferred: AfterResponse = []
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        runtime.lifecycle.draining = True
        deferred[0](result)
        assert runtime.shadow is not None and runtime.shadow.running == 0

    assert Scrape(metrics.render().decode()).value("moa_shadow_dropped_total", reason="shutdown") == 1


async def test_a_busy_gateway_sheds_shadow_work_first() -> None:
    metrics = Metrics()
    request = ChatCompletionRequest.model_validate(ASK)
    settings = Settings(max_concurrent_requests=8)  # busy from 6 client requests in flight
    async with open_runtime(settings, shadow_config(), metrics) as runtime:
        deferred: AfterResponse = []
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        runtime.lifecycle.chat_in_flight = 6
        deferred[0](result)
        runtime.lifecycle.chat_in_flight = 5
        deferred[1](result)
        assert runtime.shadow is not None and runtime.shadow.running == 1  # only the second started

    dropped = Scrape(metrics.render().decode())
    assert dropped.value("moa_shadow_dropped_total", reason="load") == 1
