"""LangChain's `ChatOpenAI` against the gateway over real HTTP: `bind_tools` (the aggregator makes the
call, proposers advise in text), a tool result sent back for the final answer, streamed tool-call
chunks, and `with_structured_output(method="function_calling")`. The upstream records what each
proposer and the aggregator received."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from moa_gateway.core.advice import ADVISE_INSTRUCTION
from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

ADVICE_ONLY = {"tools", "tool_choice", "parallel_tool_calls", "response_format"}

weather_calls: list[dict[str, Any]] = []


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
    """The current weather in a city."""
    weather_calls.append({"city": city, "unit": unit})
    return f"{city}: 18 degrees {unit}, light rain"


WEATHER_ARGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    temperature_c: float
    conditions: list[str]


@pytest.fixture
def llm(gateway: Gateway) -> ChatOpenAI:
    return ChatOpenAI(base_url=gateway.base_url, api_key="unused", model="moa-1", max_retries=0)


def assert_proposers_only_advise(gateway: Gateway) -> list[dict[str, Any]]:
    bodies = gateway.proposer_bodies()
    assert len(bodies) == len(PROPOSERS)
    for body in bodies:
        assert not ADVICE_ONLY & body.keys()
        assert body["messages"][0]["role"] == "system"
        assert ADVISE_INSTRUCTION in body["messages"][0]["content"]
    return bodies


def test_bind_tools_gets_a_tool_call_from_the_aggregator(llm: ChatOpenAI, gateway: Gateway) -> None:
    message = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")

    assert isinstance(message, AIMessage)
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.invalid_tool_calls == []
    (call,) = message.tool_calls
    assert call["name"] == "get_weather" and call["id"]
    jsonschema.validate(call["args"], WEATHER_ARGS_SCHEMA)

    (aggregator,) = gateway.recorder.sent_to("omega")
    (sent_tool,) = aggregator["tools"]
    assert sent_tool["type"] == "function" and sent_tool["function"]["name"] == "get_weather"
    assert sent_tool["function"]["parameters"]["required"] == ["city", "unit"]
    assert_proposers_only_advise(gateway)


def test_a_tool_message_sent_back_gets_a_final_answer_quoting_it(llm: ChatOpenAI, gateway: Gateway) -> None:
    model = llm.bind_tools([get_weather])
    messages: list[BaseMessage] = [HumanMessage("What is the weather in Paris?")]
    first = model.invoke(messages)
    assert isinstance(first, AIMessage)
    (call,) = first.tool_calls
    weather_calls.clear()
    result = get_weather.invoke(call)
    assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
    assert weather_calls == [call["args"]], "the tool ran with the arguments the aggregator chose"
    messages += [first, result]
    gateway.recorder.clear()

    final = model.invoke(messages)

    assert isinstance(final, AIMessage)
    assert final.tool_calls == [] and final.response_metadata["finish_reason"] == "stop"
    assert isinstance(final.content, str) and "18 degrees" in final.content
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert [tool["function"]["name"] for tool in aggregator["tools"]] == ["get_weather"]
    assert aggregator["messages"][-1]["role"] == "tool"
    assert aggregator["messages"][-1]["tool_call_id"] == call["id"]
    assert aggregator["messages"][-2]["tool_calls"][0]["id"] == call["id"]
    for body in assert_proposers_only_advise(gateway):
        assert "tool" not in [m["role"] for m in body["messages"]]
        assert not any("tool_calls" in m for m in body["messages"])
        assert body["messages"][-1]["content"].startswith(f"[Result of tool call {call['id']}]")
        assert "18 degrees" in body["messages"][-1]["content"]


def test_streamed_tool_call_chunks_reassemble_into_the_call(llm: ChatOpenAI, gateway: Gateway) -> None:
    chunks = list(llm.bind_tools([get_weather]).stream("What is the weather in Paris?"))

    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    pieces = [tc for c in chunks if isinstance(c, AIMessageChunk) for tc in c.tool_call_chunks if tc["args"]]
    assert len(pieces) > 1, "the arguments arrived in several chunks"
    total: Any = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert isinstance(total, AIMessageChunk)
    (call,) = total.tool_calls
    assert call["name"] == "get_weather" and call["id"]
    jsonschema.validate(call["args"], WEATHER_ARGS_SCHEMA)
    assert total.response_metadata["finish_reason"] == "tool_calls"

    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["stream"] is True
    assert [tool["function"]["name"] for tool in aggregator["tools"]] == ["get_weather"]
    assert_proposers_only_advise(gateway)


def test_structured_output_by_function_calling_is_a_pydantic_instance(
    llm: ChatOpenAI, gateway: Gateway
) -> None:
    structured = llm.with_structured_output(Weather, method="function_calling")

    weather = structured.invoke("What is the weather in Paris?")

    assert isinstance(weather, Weather)
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert [tool["function"]["name"] for tool in aggregator["tools"]] == ["Weather"]
    assert aggregator["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    assert aggregator["parallel_tool_calls"] is False
    assert_proposers_only_advise(gateway)
