"""The gateway behind the LiteLLM proxy, run with deploy/litellm/config.yaml, through the openai SDK: the
pipelines are LiteLLM models, and chat and streams work through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from pydantic import SecretStr

from moa_gateway.config import parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from tests.e2e.edge.litellm_proxy import MASTER_KEY, LiteLLMProxy
from tests.support.servers import ServerThread

DEMO_CONFIG = Path(__file__).parents[3] / "config" / "moa.yaml"
GATEWAY_KEY = "sk-moa-behind-litellm-0123456789"
ASK: list[Any] = [{"role": "user", "content": "Why is the sky blue?"}]


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
    app = create_app(settings, parse_config(quick_demo_config(), "config/moa.yaml"))
    with ServerThread(app, settings=settings) as server:
        yield server


@pytest.fixture(scope="module")
def litellm(gateway: ServerThread) -> Iterator[LiteLLMProxy]:
    with LiteLLMProxy(f"{gateway.url}/v1", GATEWAY_KEY) as proxy:
        yield proxy


@pytest.fixture
def client(litellm: LiteLLMProxy) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{litellm.url}/v1", api_key=MASTER_KEY, max_retries=0) as sdk:
        yield sdk


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
