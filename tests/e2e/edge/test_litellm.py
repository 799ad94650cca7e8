"""The gateway behind the LiteLLM proxy, run with deploy/litellm/config.yaml, through the openai SDK: the
pipelines are LiteLLM models, chat and streams work through it, and the cost of each run, as the gateway
reports it, is what LiteLLM books as the request's spend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.settings import Settings
from tests.support.asks import ASK
from tests.support.gateways import serve_gateway
from tests.support.litellm_proxy import MASTER_KEY, LiteLLMProxy
from tests.support.metrics import Scrape, scrape
from tests.support.servers import ServerThread

DEMO_CONFIG = Path(__file__).parents[3] / "config" / "moa.yaml"
GATEWAY_KEY = "sk-moa-behind-litellm-0123456789"

pytestmark = pytest.mark.edge


def quick_demo_config() -> dict[str, Any]:
    """config/moa.yaml (the pipelines deploy/litellm/config.yaml lists, with their prices), its
    simulated models answering at once, a token at a time."""
    data: dict[str, Any] = yaml.safe_load(DEMO_CONFIG.read_text())
    data["providers"]["sim"].update(ttft_ms=0, tokens_per_s=2000)
    for model in data["models"].values():
        model.get("params", {}).pop("simulate", None)
    return data


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServerThread]:
    settings = Settings(api_keys=SecretStr(GATEWAY_KEY))
    config = parse_config(quick_demo_config(), "config/moa.yaml")
    with serve_gateway(config, settings, production_server=True) as server:
        yield server


@pytest.fixture(scope="module")
def litellm(gateway: ServerThread) -> Iterator[LiteLLMProxy]:
    with LiteLLMProxy(f"{gateway.url}/v1", GATEWAY_KEY) as proxy:
        yield proxy


@pytest.fixture
def client(litellm: LiteLLMProxy) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{litellm.url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        yield sdk


def gateway_cost(gateway: ServerThread) -> float:
    """What the gateway's upstream calls have cost so far (USD)."""
    return scrape(gateway.url).value("moa_upstream_cost_usd_total")


def litellm_spend(litellm: LiteLLMProxy, model: str) -> float:
    """LiteLLM's spend on `model` so far (USD), from its Prometheus callback."""
    return Scrape(litellm.metrics()).value("litellm_spend_metric_total", requested_model=model)


def wait_for_spend(litellm: LiteLLMProxy, model: str, before: float) -> float:
    """LiteLLM books spend after the response: its new total, once it moved."""
    deadline = time.monotonic() + 10
    while (spend := litellm_spend(litellm, model)) == before:
        assert time.monotonic() < deadline, f"LiteLLM booked no spend on {model}"
        time.sleep(0.05)
    return spend


def test_the_pipelines_are_litellm_models(client: openai.OpenAI) -> None:
    demo_pipelines = set(yaml.safe_load(DEMO_CONFIG.read_text())["pipelines"])
    assert {model.id for model in client.models.list()} == demo_pipelines == {"moa", "moa-lite"}


def test_chat_and_streams_work_through_litellm(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="moa", messages=ASK)
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "stop"
    assert completion.usage and completion.usage.prompt_tokens and completion.usage.completion_tokens
    deltas, finish = [], None
    with client.chat.completions.create(model="moa-lite", messages=ASK, stream=True) as stream:
        for chunk in stream:
            if chunk.choices:
                deltas.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
    assert len([d for d in deltas if d]) > 1 and finish == "stop"
    assert "Synthesis of 3 responses" in "".join(deltas)  # the aggregator's answer, as the gateway sent it


def test_a_json_answers_cost_is_litellms_spend(
    client: openai.OpenAI, litellm: LiteLLMProxy, gateway: ServerThread
) -> None:
    spent, cost = litellm_spend(litellm, "moa"), gateway_cost(gateway)
    response = client.chat.completions.with_raw_response.create(model="moa", messages=ASK)
    run_cost = gateway_cost(gateway) - cost
    assert run_cost > 0
    # LiteLLM forwards the gateway's headers with an `llm_provider-` prefix, and says what it booked.
    assert float(response.headers["llm_provider-x-moa-cost-usd"]) == pytest.approx(run_cost)
    assert float(response.headers["x-litellm-response-cost"]) == pytest.approx(run_cost)
    assert wait_for_spend(litellm, "moa", spent) - spent == pytest.approx(run_cost)


def test_a_streams_cost_is_litellms_spend(
    client: openai.OpenAI, litellm: LiteLLMProxy, gateway: ServerThread
) -> None:
    spent, cost = litellm_spend(litellm, "moa-lite"), gateway_cost(gateway)
    with client.chat.completions.create(model="moa-lite", messages=ASK, stream=True) as stream:
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    run_cost = gateway_cost(gateway) - cost
    assert run_cost > 0
    assert wait_for_spend(litellm, "moa-lite", spent) - spent == pytest.approx(run_cost)
