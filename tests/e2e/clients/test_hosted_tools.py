"""Hosted Responses tools (`web_search`, `file_search`, ...), which OpenAI runs and the gateway cannot:
by default they are left out, and the answer and the log say so (Codex sends `web_search` unasked);
`MOA_HOSTED_TOOLS=reject` keeps the strict 400."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from moa_gateway.settings import Settings
from tests.support.gateways import Gateway, serve_gateway
from tests.support.recording import Recorder
from tests.support.suites import clients_config

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEB_SEARCH: Any = {"type": "web_search", "external_web_access": True}
FILE_SEARCH: Any = {"type": "file_search", "vector_store_ids": ["vs_1"]}
FORCE_WEB_SEARCH: Any = {"type": "web_search"}


def test_hosted_tools_are_dropped_and_named_in_the_answer_and_the_log(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="moa_gateway.service.responses"),
        openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client,
    ):
        response = client.responses.create(
            model="moa-1", input="Weather in Paris?", tools=[WEB_SEARCH, WEATHER, FILE_SEARCH]
        )
    [call] = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert (response.model_extra or {})["moa"]["dropped_tools"] == ["web_search", "file_search"]
    assert [t.type for t in response.tools] == ["function"]  # the echo shows what the model was offered
    [aggregator] = gateway.recorder.sent_to("omega")
    assert [t["function"]["name"] for t in aggregator["tools"]] == ["get_weather"]
    assert (
        f"response {response.id}: hosted tools dropped (MOA_HOSTED_TOOLS=drop): web_search, file_search"
        in (caplog.text)
    )


def test_a_tool_choice_forcing_a_dropped_tool_lets_the_model_choose(gateway: Gateway) -> None:
    """Only hosted tools: none is left, so neither `tools` nor `tool_choice` reaches the upstream."""
    with openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        response = client.responses.create(
            model="alpha", input="Search the web", tools=[WEB_SEARCH], tool_choice=FORCE_WEB_SEARCH
        )
    assert response.status == "completed" and response.output_text.startswith("[alpha] On 'Search the web'")
    assert (response.model_extra or {})["moa"]["dropped_tools"] == ["web_search"]
    [sent] = gateway.recorder.sent_to("alpha")
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(sent)


@pytest.fixture
def strict_gateway(upstream: tuple[str, Recorder]) -> Iterator[Gateway]:
    with serve_gateway(clients_config(upstream[0]), Settings(hosted_tools="reject")) as server:
        upstream[1].clear()
        yield Gateway(server.url, upstream[1])


@pytest.mark.parametrize("tool", [WEB_SEARCH, FILE_SEARCH])
def test_reject_is_a_400_naming_the_hosted_tool(strict_gateway: Gateway, tool: Any) -> None:
    with (
        openai.OpenAI(base_url=strict_gateway.base_url, api_key="unused", max_retries=0) as client,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        client.responses.create(model="moa", input="Search the web", tools=[WEATHER, tool])
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert body["param"] == "tools[1].type" and repr(tool["type"]) in body["message"]
    assert strict_gateway.recorder.bodies() == []
