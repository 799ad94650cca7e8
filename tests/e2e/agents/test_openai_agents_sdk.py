"""The OpenAI Agents SDK against the gateway over real HTTP: an `Agent` on `OpenAIChatCompletionsModel`
with a function tool. The runner's loop goes through the gateway twice (the aggregator calls the tool,
then answers from its result); the upstream records what each proposer and the aggregator received."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import jsonschema
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    ToolCallItem,
    ToolCallOutputItem,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pydantic import BaseModel

from moa_gateway.core.advice import ADVISE_INSTRUCTION
from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

ADVICE_ONLY = {"tools", "tool_choice", "parallel_tool_calls", "response_format"}
ARGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}

set_tracing_disabled(True)  # nothing may try to reach api.openai.com


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def weather_agent(
    client: AsyncOpenAI, calls: list[dict[str, str]], settings: ModelSettings | None = None
) -> Agent[None]:
    @function_tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
        """The current weather in a city.

        Args:
            city: The city.
            unit: The temperature unit.
        """
        calls.append({"city": city, "unit": unit})
        return f"WEATHER-REPORT {city}: 18 degrees {unit}, light rain"

    return Agent(
        name="forecaster",
        instructions="Answer questions about the weather, calling the tool for facts.",
        model=OpenAIChatCompletionsModel(model="moa-1", openai_client=client),
        tools=[get_weather],
        model_settings=settings or ModelSettings(),
    )


def assert_upstream_saw_one_agent_loop(gateway: Gateway) -> None:
    """Two turns: the aggregator got the tool both times and the tool result the second time; each
    proposer got a text-only view both times."""
    first, second = gateway.recorder.sent_to("omega")
    for body in (first, second):
        (tool,) = body["tools"]
        assert tool["function"]["name"] == "get_weather"
        assert tool["function"]["parameters"]["required"] == ["city", "unit"]
    assert first["messages"][-1]["role"] == "user"
    assert second["messages"][-1]["role"] == "tool"
    assert "WEATHER-REPORT" in second["messages"][-1]["content"]
    call_id = second["messages"][-1]["tool_call_id"]

    bodies = gateway.proposer_bodies()
    assert len(bodies) == 2 * len(PROPOSERS)
    for body in bodies:
        assert not ADVICE_ONLY & body.keys()
        assert ADVISE_INSTRUCTION in body["messages"][0]["content"]
        assert "tool" not in [m["role"] for m in body["messages"]]
        assert not any("tool_calls" in m for m in body["messages"])
    after_result = [b for b in bodies if "WEATHER-REPORT" in str(b["messages"])]
    assert len(after_result) == len(PROPOSERS), "the second turn's proposers read the result as text"
    for body in after_result:
        assert body["messages"][-1]["content"].startswith(f"[Result of tool call {call_id}]")


async def test_runner_calls_the_tool_and_answers_from_its_result(
    client: AsyncOpenAI, gateway: Gateway
) -> None:
    calls: list[dict[str, str]] = []

    result = await Runner.run(weather_agent(client, calls), "What is the weather in Paris?")

    (args,) = calls
    jsonschema.validate(args, ARGS_SCHEMA)
    assert isinstance(result.final_output, str)
    assert f"WEATHER-REPORT {args['city']}: 18 degrees" in result.final_output
    kinds = [type(item) for item in result.new_items]
    assert ToolCallItem in kinds and ToolCallOutputItem in kinds
    assert_upstream_saw_one_agent_loop(gateway)


async def test_streamed_run_calls_the_tool_and_answers_from_its_result(
    client: AsyncOpenAI, gateway: Gateway
) -> None:
    calls: list[dict[str, str]] = []

    result = Runner.run_streamed(weather_agent(client, calls), "What is the weather in Paris?")
    events = [event async for event in result.stream_events()]

    (args,) = calls
    jsonschema.validate(args, ARGS_SCHEMA)
    assert isinstance(result.final_output, str)
    assert f"WEATHER-REPORT {args['city']}: 18 degrees" in result.final_output
    names = [getattr(event, "name", None) for event in events]
    assert "tool_called" in names and "tool_output" in names
    for body in gateway.recorder.sent_to("omega"):
        assert body["stream"] is True
    assert_upstream_saw_one_agent_loop(gateway)


async def test_a_forced_tool_choice_reaches_the_aggregator_only(
    client: AsyncOpenAI, gateway: Gateway
) -> None:
    calls: list[dict[str, str]] = []
    settings = ModelSettings(tool_choice="get_weather", parallel_tool_calls=False)

    result = await Runner.run(weather_agent(client, calls, settings), "What is the weather in Paris?")

    assert len(calls) == 1 and "WEATHER-REPORT" in str(result.final_output)
    first, second = gateway.recorder.sent_to("omega")
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert first["parallel_tool_calls"] is False
    assert "tool_choice" not in second, "the SDK resets tool_choice (None: omitted) once the tool ran"
    assert_upstream_saw_one_agent_loop(gateway)


class Forecast(BaseModel):
    city: str
    temperature_c: float
    conditions: list[str]


async def test_an_output_type_gets_a_validated_instance(client: AsyncOpenAI, gateway: Gateway) -> None:
    agent = Agent(
        name="forecaster",
        model=OpenAIChatCompletionsModel(model="moa-1", openai_client=client),
        output_type=Forecast,
    )

    result = await Runner.run(agent, "What is the weather in Paris?")

    assert isinstance(result.final_output, Forecast)
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["response_format"]["type"] == "json_schema"
    assert aggregator["response_format"]["json_schema"]["schema"]["required"] == [
        "city",
        "temperature_c",
        "conditions",
    ]
    bodies = gateway.proposer_bodies()
    assert len(bodies) == len(PROPOSERS)
    assert all(not ADVICE_ONLY & body.keys() for body in bodies)


async def test_the_aggregator_gets_the_conversation_exactly_as_the_sdk_sent_it(gateway: Gateway) -> None:
    sent: list[dict[str, Any]] = []

    async def keep(request: Any) -> None:  # an httpx (openai 1.x, 2.x) or httpx2 (3.x) request
        sent.append(json.loads(request.content))

    async with (
        DefaultAsyncHttpxClient(event_hooks={"request": [keep]}) as http,
        AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0, http_client=http) as client,
    ):
        await Runner.run(weather_agent(client, []), "What is the weather in Paris?")

    _first, second = sent
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["content"] is None, "the SDK sends an explicit null content"
    _, aggregator = gateway.recorder.sent_to("omega")
    assert aggregator["messages"][0]["content"].startswith(second["messages"][0]["content"])
    assert aggregator["messages"][1:] == second["messages"][1:]
