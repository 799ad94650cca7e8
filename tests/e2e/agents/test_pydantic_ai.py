"""pydantic-ai against the gateway over real HTTP: an agent on `OpenAIChatModel` with a plain tool (the
aggregator calls it, then answers from its result), and a pydantic `output_type` (by default an output
tool the aggregator must call). The upstream records what each proposer and the aggregator received."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import ToolCallPart, ToolReturnPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from moa_gateway.core.advice import ADVISE_INSTRUCTION
from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

ADVICE_ONLY = {"tools", "tool_choice", "parallel_tool_calls", "response_format"}
ARGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}


class Forecast(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str]


@pytest.fixture
async def chat_model(gateway: Gateway) -> AsyncIterator[OpenAIChatModel]:
    provider = OpenAIProvider(base_url=gateway.base_url, api_key="unused")
    async with provider.client:  # the provider's own client, closed so no socket outlives the test
        yield OpenAIChatModel("moa-1", provider=provider)


def assert_proposers_only_advise(bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        assert not ADVICE_ONLY & body.keys()
        assert ADVISE_INSTRUCTION in body["messages"][0]["content"]
        assert "tool" not in [m["role"] for m in body["messages"]]
        assert not any("tool_calls" in m for m in body["messages"])


async def test_the_tool_is_called_and_the_output_quotes_its_result(
    chat_model: OpenAIChatModel, gateway: Gateway
) -> None:
    agent = Agent(chat_model, instructions="Answer weather questions with the tool.")
    calls: list[dict[str, str]] = []

    @agent.tool_plain
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
        """The current weather in a city."""
        calls.append({"city": city, "unit": unit})
        return f"WEATHER-REPORT {city}: 18 degrees {unit}, light rain"

    result = await agent.run("What is the weather in Paris?")

    (args,) = calls
    jsonschema.validate(args, ARGS_SCHEMA)
    assert isinstance(result.output, str)
    assert f"WEATHER-REPORT {args['city']}: 18 degrees" in result.output
    parts = [part for message in result.all_messages() for part in message.parts]
    assert [p.tool_name for p in parts if isinstance(p, ToolCallPart)] == ["get_weather"]
    assert [p.tool_name for p in parts if isinstance(p, ToolReturnPart)] == ["get_weather"]

    first, second = gateway.recorder.sent_to("omega")
    for body in (first, second):
        assert [tool["function"]["name"] for tool in body["tools"]] == ["get_weather"]
    assert second["messages"][-1]["role"] == "tool"
    assert "WEATHER-REPORT" in second["messages"][-1]["content"]
    call_id = second["messages"][-1]["tool_call_id"]
    bodies = gateway.proposer_bodies()
    assert len(bodies) == 2 * len(PROPOSERS)
    assert_proposers_only_advise(bodies)
    after_result = [b for b in bodies if "WEATHER-REPORT" in str(b["messages"])]
    assert len(after_result) == len(PROPOSERS)
    for body in after_result:
        assert body["messages"][-1]["content"].startswith(f"[Result of tool call {call_id}]")


async def test_an_output_type_gets_a_validated_instance(
    chat_model: OpenAIChatModel, gateway: Gateway
) -> None:
    agent = Agent(chat_model, output_type=Forecast)

    result = await agent.run("What is the weather in Paris?")

    assert isinstance(result.output, Forecast)
    (aggregator,) = gateway.recorder.sent_to("omega")
    (output_tool,) = aggregator["tools"]
    assert output_tool["function"]["parameters"]["required"] == ["city", "temperature_c", "conditions"]
    assert aggregator["tool_choice"] == "required", "text is no output: the aggregator must call the tool"
    bodies = gateway.proposer_bodies()
    assert len(bodies) == len(PROPOSERS)
    assert_proposers_only_advise(bodies)
