"""A pipeline's gate over real HTTP: the gateway and the simulator on loopback, read by the `openai` SDK.
Agreeing gate samples answer alone and say why; disagreeing ones (or a low reported confidence) run the
pipeline; with `audit_rate: 1` every pass gets a verdict in the metrics after its response, and a slow
judge does not delay the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

from moa_gateway.config import GatewayConfig, parse_config
from moa_gateway.core.caller import ANONYMOUS
from moa_gateway.runtime import open_runtime
from moa_gateway.service.chat import AfterResponse
from moa_gateway.settings import Settings
from moa_gateway.telemetry.metrics import Metrics
from moa_gateway.wire.requests import ChatCompletionRequest
from tests.support.asks import ASK
from tests.support.configs import SIM_KEY, topology
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape, scrape, wait_for_metric
from tests.support.servers import ServerThread

JUDGE_DELAY_S = 2.0
CALLS = "moa_upstream_request_duration_seconds_count"
AGREE = {"simulate": {"agreement": 1}}  # every gate sample gives the same answer
DISAGREE = {"simulate": {"agreement": 0}}  # each its own


def gate_config(sim_url: str, **gate: Any) -> GatewayConfig:
    """`moa`: alpha, beta, gamma, then omega; its gate gamma. The judge prefers omega's answers, slowly."""
    judge = {
        "provider": "remote",
        "params": {"simulate": {"prefer": "omega", "judge_delay_ms": JUDGE_DELAY_S * 1000}},
    }
    data = {
        "providers": {
            "remote": {
                "type": "openai",
                "base_url": f"{sim_url}/v1",
                "api_key": SIM_KEY,
                "timeout_s": 10,
                "retries": {"max_attempts": 1},
            }
        },
        **topology("remote", layers=1, extra_models={"judge": judge}),
    }
    data["pipelines"]["moa"]["gate"] = {"model": "gamma", **gate}
    return parse_config(data, "test")


def gateway(sim_server: ServerThread, **gate: Any) -> ServerThread:
    return serve_gateway(gate_config(sim_server.url, **gate))


@pytest.fixture
def agreement_gate(sim_server: ServerThread) -> Iterator[ServerThread]:
    with gateway(sim_server, samples=3, threshold=0.8) as server:
        yield server


def client_of(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def moa_of(completion: ChatCompletion) -> dict[str, Any]:
    return dict((completion.model_extra or {})["moa"])


def test_agreeing_samples_make_only_the_gates_calls_and_say_why(agreement_gate: ServerThread) -> None:
    with client_of(agreement_gate) as client:
        completion = client.chat.completions.create(model="moa", messages=ASK, extra_body=AGREE)

    moa = moa_of(completion)
    assert [(c["role"], c["model"]) for c in moa["calls"]] == [("gate", "gamma")] * 3
    assert moa["answered_by"] == "gamma"
    content = completion.choices[0].message.content
    assert content is not None and content.startswith("[gamma] On 'Why is the sky blue?'")
    assert moa["gate"] == {
        "model": "gamma",
        "method": "agreement",
        "confidence": 1.0,
        "threshold": 0.8,
        "passed": True,
        "audited": False,
        "reason": "3 of 3 samples agree (1 >= 0.8)",
    }
    metrics = scrape(agreement_gate.url)
    assert metrics.value(CALLS, role="gate") == 3 and metrics.value(CALLS, role="proposer") == 0
    assert metrics.value(CALLS, role="aggregator") == 0
    assert metrics.value("moa_gate_decisions_total", pipeline="moa", decision="pass") == 1
    assert metrics.value("moa_calls_saved_total", pipeline="moa", reason="gate") == 4


def test_a_streamed_pass_sends_the_gates_answer(agreement_gate: ServerThread) -> None:
    with client_of(agreement_gate) as client:
        chunks = list(
            client.chat.completions.create(
                model="moa",
                messages=ASK,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=AGREE,
            )
        )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[gamma] On 'Why is the sky blue?'")
    moa = dict((chunks[-1].model_extra or {})["moa"])
    assert moa["gate"]["passed"] is True and len(moa["calls"]) == 3
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize(("told", "passed"), [(AGREE, True), (DISAGREE, False)])
def test_live_events_tell_the_gates_decision_once_its_calls_are_done(
    agreement_gate: ServerThread, told: dict[str, Any], passed: bool
) -> None:
    live = {**told, "moa": {"stream_events": True}}
    with client_of(agreement_gate) as client:
        chunks = list(
            client.chat.completions.create(
                model="moa",
                messages=ASK,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=live,
            )
        )

    events = [e for c in chunks for e in (c.model_extra or {}).get("moa_events") or []]
    kinds = [(e["type"], e.get("role")) for e in events]
    decided = kinds.index(("gate", None))
    assert kinds[1:decided].count(("call.finished", "gate")) == 3  # after the samples, before the rest
    after = kinds[decided + 1 :]  # a pass: the answer and the run's end; else the pipeline
    assert after[0] == (("run.finished", None) if passed else ("layer.started", None))
    assert any(role == "proposer" for _, role in after) is not passed
    moa = dict((chunks[-1].model_extra or {})["moa"])
    assert events[decided] == {"type": "gate", **moa["gate"]}  # what the final chunk's moa.gate says
    assert moa["gate"]["passed"] is passed
    reason = "3 of 3 samples agree (1 >= 0.8)" if passed else "1 of 3 samples agree (0.333 < 0.8)"
    assert moa["gate"]["reason"] == reason


def test_disagreeing_samples_run_the_pipeline_and_say_why(agreement_gate: ServerThread) -> None:
    with client_of(agreement_gate) as client:
        completion = client.chat.completions.create(model="moa", messages=ASK, extra_body=DISAGREE)

    moa = moa_of(completion)
    roles = [c["role"] for c in moa["calls"]]
    assert roles == ["gate"] * 3 + ["proposer"] * 3 + ["aggregator"]
    assert moa["answered_by"] == "omega"
    assert moa["gate"]["passed"] is False and moa["gate"]["confidence"] == pytest.approx(0.333)
    assert moa["gate"]["reason"] == "1 of 3 samples agree (0.333 < 0.8)"
    assert moa["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in moa["calls"]), abs=1e-9)
    metrics = scrape(agreement_gate.url)
    assert metrics.value("moa_gate_decisions_total", pipeline="moa", decision="escalate") == 1
    assert metrics.value("moa_gate_decisions_total", pipeline="moa", decision="pass") == 0


@pytest.mark.parametrize(("confidence", "passed"), [(0.9, True), (0.4, False)])
def test_a_reported_confidence_decides_and_its_line_is_stripped(
    sim_server: ServerThread, confidence: float, passed: bool
) -> None:
    with gateway(sim_server, confidence="self_report", threshold=0.7) as server, client_of(server) as client:
        told = {"simulate": {"confidence": confidence}}
        completion = client.chat.completions.create(model="moa", messages=ASK, extra_body=told)

    moa = moa_of(completion)
    sign = ">=" if passed else "<"
    assert moa["gate"]["passed"] is passed and moa["gate"]["method"] == "self_report"
    assert (
        moa["gate"]["reason"]
        == f"the gate model reported confidence {confidence:g} ({confidence:g} {sign} 0.7)"
    )
    content = completion.choices[0].message.content
    assert content is not None and "Confidence" not in content
    assert moa["answered_by"] == ("gamma" if passed else "omega")
    assert len(moa["calls"]) == (1 if passed else 5)


def test_every_audited_pass_gets_a_verdict_after_its_response_and_a_slow_judge_waits_for_none(
    sim_server: ServerThread,
) -> None:
    with gateway(sim_server, audit_rate=1, judge="judge") as server, client_of(server) as client:
        latencies, answered = [], []
        for stream in (False, True, False):
            started = time.perf_counter()
            if stream:
                chunks = list(
                    client.chat.completions.create(
                        model="moa",
                        messages=ASK,
                        stream=True,
                        stream_options={"include_usage": True},
                        extra_body=AGREE,
                    )
                )
                moa = dict((chunks[-1].model_extra or {})["moa"])
            else:
                moa = moa_of(client.chat.completions.create(model="moa", messages=ASK, extra_body=AGREE))
            latencies.append(time.perf_counter() - started)
            answered.append(scrape(server.url))  # the moment the client has its whole answer
            assert moa["gate"]["passed"] is True and moa["gate"]["audited"] is True
        escalated = moa_of(client.chat.completions.create(model="moa", messages=ASK, extra_body=DISAGREE))

        # Each response came before its audit's judge could answer: the judge takes JUDGE_DELAY_S.
        assert max(latencies) < JUDGE_DELAY_S
        assert all(m.value(CALLS, role="judge") == 0 for m in answered)
        assert all(m.value("moa_gate_audits_total") == 0 for m in answered)
        assert escalated["gate"]["passed"] is False and escalated["gate"]["audited"] is False

        done = wait_for_metric(server.url, "moa_gate_audits_total", 3, timeout_s=15, pipeline="moa")
        time.sleep(0.3)  # an audit of the escalated request, had one started, would have ended by now
        final = scrape(server.url)

    # The pipeline's answer (omega's) is the judge's preference: a win of the pipeline over the gate.
    assert done.value("moa_gate_audits_total", pipeline="moa", verdict="win") == 3
    assert final.value("moa_gate_audits_total") == 3
    assert final.value(CALLS, role="audit", model="omega") == 3  # the whole pipeline, once per pass
    assert final.value(CALLS, role="audit", model="alpha") == 3
    assert final.value(CALLS, role="judge", model="judge", outcome="ok") == 6  # both orders each
    assert final.value(CALLS, role="aggregator") == 1  # the client's own: only the escalated request's
    assert final.value("moa_gate_audits_dropped_total") == 0


async def test_audits_run_only_for_live_traffic_and_are_dropped_at_shutdown(sim_server: ServerThread) -> None:
    metrics = Metrics()
    request = ChatCompletionRequest.model_validate({"model": "moa", "messages": ASK, **AGREE})
    config = gate_config(sim_server.url, audit_rate=1, judge="judge")
    async with open_runtime(Settings(), config, metrics) as runtime:
        # In-process (an eval, a script): no HTTP edge to defer to, so not audited, and not said to be.
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS))
        assert result.gate is not None and result.gate.passed and not result.gate.audited

        deferred: AfterResponse = []  # what the HTTP edge keeps on a request's record
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        assert result.gate is not None and result.gate.audited and len(deferred) == 1
        deferred[0](result)  # the response has been sent: start it
        assert runtime.audits is not None and runtime.audits.running == 1
        await asyncio.sleep(0.5)  # the pipeline has answered; the judge takes JUDGE_DELAY_S
    # Leaving the runtime (shutdown) cancelled it while the judge was still answering.
    scraped = Scrape(metrics.render().decode())
    assert scraped.value("moa_gate_audits_dropped_total", pipeline="moa", reason="shutdown") == 1
    assert scraped.value("moa_gate_audits_total") == 0
    assert scraped.value(CALLS, role="audit", model="omega", outcome="ok") == 1


async def test_a_busy_gateway_sheds_audits(sim_server: ServerThread) -> None:
    metrics = Metrics()
    request = ChatCompletionRequest.model_validate({"model": "moa", "messages": ASK, **AGREE})
    config = gate_config(sim_server.url, audit_rate=1, judge="judge")
    async with open_runtime(Settings(max_concurrent_requests=8), config, metrics) as runtime:
        deferred: AfterResponse = []
        result = await runtime.chat.complete(await runtime.chat.prepare(request, ANONYMOUS, deferred))
        runtime.lifecycle.chat_in_flight = 6  # 3/4 of the admitted requests: background work is shed
        deferred[0](result)
        assert runtime.audits is not None and runtime.audits.running == 0

    assert Scrape(metrics.render().decode()).value("moa_gate_audits_dropped_total", reason="load") == 1
