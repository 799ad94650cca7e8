"""Recovery through real HTTP: retries that succeed, Retry-After, circuit breakers opening and closing,
and fallbacks declared in the config."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.support.asks import ASK
from tests.support.configs import SIM_KEY
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread


def gateway_for(
    sim: ServerThread, models: dict[str, Any], pipelines: dict[str, Any] | None = None
) -> ServerThread:
    provider = {
        "type": "openai",
        "base_url": f"{sim.url}/v1",
        "api_key": SIM_KEY,
        "timeout_s": 2,
        "retries": {"max_attempts": 3, "base_delay_s": 0.01, "retry_after_cap_s": 1.0},
    }
    config = {"providers": {"sim": provider}, "models": models, "pipelines": pipelines or {}}
    return serve_gateway(config)


def flaky(fault: str, count: int, **extra: Any) -> dict[str, Any]:
    """A model whose first `count` requests fail with `fault` (a fresh key per test)."""
    simulate = {"fault": fault, "fault_count": count, "fault_key": uuid.uuid4().hex, **extra}
    return {"provider": "sim", "params": {"simulate": simulate}}


def ask(gateway: ServerThread, model: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json={"model": model, "messages": ASK}, timeout=10
    )


def test_transient_server_errors_are_retried_into_a_success(sim_server: ServerThread) -> None:
    with gateway_for(sim_server, {"m": flaky("error_503", 2)}) as gateway:
        response = ask(gateway, "m")
        scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)

    assert response.status_code == 200
    assert scrape.value("moa_upstream_retries_total", model="m") == 2
    assert scrape.value("moa_upstream_errors_total", model="m", kind="server_error") == 2
    assert scrape.value("moa_upstream_request_duration_seconds_count", model="m", outcome="ok") == 1


def test_retry_after_is_honoured(sim_server: ServerThread) -> None:
    with gateway_for(sim_server, {"m": flaky("rate_limit", 1, retry_after_s=0.4)}) as gateway:
        response = ask(gateway, "m")

    assert response.status_code == 200
    (call,) = response.json()["moa"]["calls"]
    assert call["latency_ms"] >= 400, "the retry waited for the provider's Retry-After"


def test_a_rejected_request_is_not_retried(sim_server: ServerThread) -> None:
    bad = {"provider": "sim", "params": {"simulate": {"fault": "nonsense"}}}  # the simulator answers 400
    with gateway_for(sim_server, {"m": bad}) as gateway:
        response = ask(gateway, "m")
        scrape = Scrape(httpx.get(f"{gateway.url}/metrics").text)

    assert response.status_code == 400
    assert scrape.value("moa_upstream_retries_total") == 0


def test_a_failing_proposer_trips_its_breaker_is_skipped_then_recovers(sim_server: ServerThread) -> None:
    breaker = {"failure_threshold": 2, "cooldown_s": 0.5}
    models = {
        "ok1": {"provider": "sim"},
        "ok2": {"provider": "sim"},
        "agg": {"provider": "sim"},
        # fails its first 6 requests: 2 requests x 3 attempts; later ones succeed
        "sick": {**flaky("error_500", 6), "circuit_breaker": breaker},
    }
    pipelines = {"moa": {"layers": [{"proposers": ["ok1", "ok2", "sick"]}], "aggregator": "agg"}}
    with gateway_for(sim_server, models, pipelines) as gateway:
        failures = [ask(gateway, "moa").json() for _ in range(2)]
        skipped = ask(gateway, "moa").json()
        ready = httpx.get(f"{gateway.url}/readyz").json()
        open_state = Scrape(httpx.get(f"{gateway.url}/metrics").text).value(
            "moa_circuit_state", model="sick", state="open"
        )
        time.sleep(0.6)  # the cool-down passes: one trial call is let through, and succeeds
        recovered = ask(gateway, "moa").json()
        closed_state = Scrape(httpx.get(f"{gateway.url}/metrics").text).value(
            "moa_circuit_state", model="sick", state="closed"
        )

    assert all(body["moa"]["dropped"] == ["sick"] for body in failures)
    sick = [c for c in skipped["moa"]["calls"] if c["model"] == "sick"]
    assert [(c["status"], c["error_code"]) for c in sick] == [("skipped", "circuit_open")]
    assert ready["open_circuits"] == ["sick"] and open_state == 1
    assert recovered["moa"]["dropped"] == [] and closed_state == 1


def test_fallbacks_from_the_config_stand_in(sim_server: ServerThread) -> None:
    down = {"provider": "sim", "params": {"simulate": {"fault": "error_500"}}}
    models = {
        "p1": {**down, "fallbacks": ["spare"]},
        "p2": {"provider": "sim"},
        "spare": {"provider": "sim"},
        "agg": down,
        "agg2": {"provider": "sim"},
    }
    pipelines = {
        "with-fallback": {
            "layers": [{"proposers": ["p1", "p2"]}],
            "aggregator": "agg",
            "aggregator_fallbacks": ["agg2"],
        },
        "best-proposal": {
            "layers": [{"proposers": ["p2", "spare"]}],
            "aggregator": "agg",
            "on_aggregator_failure": "best_proposal",
        },
    }
    with gateway_for(sim_server, models, pipelines) as gateway:
        fallen_back = ask(gateway, "with-fallback").json()
        degraded = ask(gateway, "best-proposal").json()

    calls = [(c["model"], c["status"], c.get("fallback_for")) for c in fallen_back["moa"]["calls"]]
    assert calls == [
        ("p1", "error", None),
        ("spare", "ok", "p1"),
        ("p2", "ok", None),
        ("agg", "error", None),
        ("agg2", "ok", "agg"),
    ]
    assert fallen_back["moa"]["answered_by"] == "agg2"
    assert fallen_back["choices"][0]["message"]["content"].startswith("[agg2] Synthesis of 2 responses")
    assert degraded["moa"]["degraded"] == "aggregator_failed" and degraded["moa"]["answered_by"] == "p2"
    assert degraded["choices"][0]["message"]["content"].startswith("[p2] On 'Why is the sky blue?'")
