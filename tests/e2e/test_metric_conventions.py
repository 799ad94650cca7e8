"""/metrics follows the conventions operators expect, over real HTTP (the openai SDK against a gateway
in front of the simulator): process and platform collectors, a build info gauge, request metrics by
endpoint with HELP texts that say what they count, circuit states one series per state, and
OpenTelemetry's GenAI histograms beside the `moa_*` ones."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib.metadata import version

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.asks import ASK, SKY
from tests.support.configs import http_config
from tests.support.gateways import serve_gateway
from tests.support.metrics import Scrape
from tests.support.servers import ServerThread

BROKEN = {"provider": "remote", "params": {"simulate": {"fault": "error_500"}}}


@pytest.fixture(scope="module")
def scrape(sim_server: ServerThread) -> Iterator[Scrape]:
    """One request to each model endpoint (and one to an unknown /v1/ path, one to a failing model)."""
    config = http_config(f"{sim_server.url}/v1", extra_models={"broken": BROKEN})
    with serve_gateway(config) as server:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
            client.chat.completions.create(model="moa-1", messages=ASK)
            client.completions.create(model="moa-1", prompt=SKY)
            client.responses.create(model="moa-1", input=SKY)
            client.embeddings.create(model="alpha", input="sky")
            with pytest.raises(openai.APIStatusError):
                client.chat.completions.create(model="broken", messages=ASK)
        assert httpx.post(f"{server.url}/v1/nope", json={}).status_code == 404
        yield Scrape(httpx.get(f"{server.url}/metrics").text)


def test_process_platform_and_build_info(scrape: Scrape) -> None:
    assert scrape.value("process_resident_memory_bytes") > 10_000_000
    assert scrape.value("process_cpu_seconds_total") > 0
    assert scrape.value("python_info", version=platform.python_version()) == 1
    assert (
        scrape.value(
            "moa_build_info", version=version("moa-gateway"), python_version=platform.python_version()
        )
        == 1
    )


def test_request_metrics_say_which_endpoint(scrape: Scrape) -> None:
    for endpoint in ["chat", "completions", "responses"]:
        assert scrape.value("moa_requests_total", endpoint=endpoint, model="moa-1", status="200") == 1
        assert scrape.value("moa_request_duration_seconds_count", endpoint=endpoint, model="moa-1") == 1
    assert scrape.value("moa_requests_total", endpoint="embeddings", model="alpha", status="200") == 1
    assert scrape.value("moa_requests_total", endpoint="other", model="unknown", status="404") == 1
    assert scrape.value("moa_requests_total") == 6
    in_flight = {s.labels["endpoint"]: s.value for s in scrape.samples if s.name == "moa_requests_in_flight"}
    assert in_flight == dict.fromkeys(["chat", "completions", "responses", "embeddings", "other"], 0)


def test_help_texts_say_what_the_request_metrics_count(scrape: Scrape) -> None:
    helps = {f.name: f.documentation for f in text_string_to_metric_families(scrape.text)}

    for name in ["moa_requests", "moa_request_duration_seconds", "moa_requests_in_flight"]:
        assert "chat completions, completions, responses and embeddings" in helps[name]


def test_circuit_state_is_one_series_per_state(scrape: Scrape) -> None:
    states = {
        (s.labels["model"], s.labels["state"]): s.value
        for s in scrape.samples
        if s.name == "moa_circuit_state"
    }

    for model in ["alpha", "beta", "gamma", "omega", "broken"]:
        assert {state: states[(model, state)] for state in ["closed", "open", "half_open"]} == {
            "closed": 1,
            "open": 0,
            "half_open": 0,
        }


def test_gen_ai_histograms_follow_the_semantic_conventions(scrape: Scrape) -> None:
    duration = "gen_ai_client_operation_duration_seconds"
    chat = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "alpha",
    }

    # alpha proposed once for each of chat, completions and responses, and embedded once
    assert scrape.value(f"{duration}_count", **chat, error_type="") == 3
    assert (
        scrape.value(f"{duration}_count", gen_ai_operation_name="embeddings", gen_ai_request_model="alpha")
        == 1
    )
    assert scrape.value(f"{duration}_count", gen_ai_request_model="broken", error_type="server_error") == 1
    assert scrape.value(f"{duration}_count") == scrape.value("moa_upstream_request_duration_seconds_count")
    tokens = "gen_ai_client_token_usage"
    assert scrape.value(f"{tokens}_count", **chat, gen_ai_token_type="output") == 3
    assert scrape.value(f"{tokens}_sum", **chat, gen_ai_token_type="output") == scrape.value(
        "moa_upstream_tokens_total", model="alpha", role="proposer", type="output"
    )
    assert (
        scrape.value(f"{tokens}_count", gen_ai_operation_name="embeddings", gen_ai_token_type="output") == 0
    )
    # the conventions' advised buckets
    bounds = {s.labels["le"] for s in scrape.samples if s.name == f"{duration}_bucket"}
    assert bounds == {"0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56", "5.12", "10.24", "20.48", "40.96", "81.92", "+Inf"}  # fmt: skip
    token_bounds = {float(s.labels["le"]) for s in scrape.samples if s.name == f"{tokens}_bucket"}
    assert token_bounds == {4.0**i for i in range(14)} | {float("inf")}, "1, 4, 16... 67108864"
