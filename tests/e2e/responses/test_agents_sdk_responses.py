"""The OpenAI Agents SDK on its default model, `OpenAIResponsesModel` (the Responses API), against the
gateway over real HTTP: an agent with a function tool, run to its end and streamed. The runner's loop
goes through `/v1/responses` twice: the aggregator calls the tool, then answers from its result."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Agent,
    OpenAIResponsesModel,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import _openai_shared
from openai import AsyncOpenAI

from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

set_tracing_disabled(True)  # nothing may try to reach api.openai.com

calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The current weather in a city."""
    calls.append(city)
    return f"18 C and rain in {city}"


@pytest.fixture
async def default_client(gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    """The gateway as the Agents SDK's default OpenAI client, as its docs set a custom endpoint."""
    previous = _openai_shared.get_default_openai_client()
    async with AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as client:
        set_default_openai_client(client, use_for_tracing=False)
        calls.clear()
        try:
            yield client
        finally:
            _openai_shared.set_default_openai_client(previous)  # type: ignore[arg-type]


def _agent() -> Agent[Any]:
    return Agent(
        name="weather",
        instructions="Answer weather questions with the tool.",
        model="moa",
        tools=[get_weather],
    )


async def test_an_agent_on_the_default_responses_model_calls_a_tool_and_answers(
    default_client: AsyncOpenAI, gateway: Gateway
) -> None:
    agent = _agent()
    result = await Runner.run(agent, "What is the weather in Paris?")

    assert calls and isinstance(result.final_output, str)
    assert result.final_output.endswith(f"Based on the tool result: 18 C and rain in {calls[0]}")
    assert [type(i) for i in result.new_items if isinstance(i, ToolCallItem | ToolCallOutputItem)] == [
        ToolCallItem,
        ToolCallOutputItem,
    ]
    first, second = gateway.recorder.sent_to("omega")
    assert first["tools"][0]["function"]["name"] == "get_weather" and first["tools"][0]["type"] == "function"
    assert first["messages"][0]["content"].startswith("Answer weather questions with the tool.")
    assert [m["role"] for m in second["messages"][1:]] == ["user", "assistant", "tool"]
    assert second["messages"][-1]["content"] == f"18 C and rain in {calls[0]}"
    assert all("tools" not in body for p in PROPOSERS for body in gateway.recorder.sent_to(p))
    assert len(result.raw_responses) == 2 and result.raw_responses[0].response_id is not None


async def test_the_default_model_is_the_responses_model(default_client: AsyncOpenAI) -> None:
    from agents import RunConfig

    model = RunConfig().model_provider.get_model("moa")
    assert isinstance(model, OpenAIResponsesModel)


async def test_a_streamed_agent_run_goes_through_the_responses_stream(
    default_client: AsyncOpenAI, gateway: Gateway
) -> None:
    run = Runner.run_streamed(_agent(), "What is the weather in Oslo?")
    kinds = [event.type async for event in run.stream_events()]

    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert calls and isinstance(run.final_output, str)
    assert run.final_output.endswith(f"Based on the tool result: 18 C and rain in {calls[0]}")
    assert len(gateway.recorder.sent_to("omega")) == 2
