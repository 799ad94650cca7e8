"""instructor against the gateway over real HTTP, in its default TOOLS mode: the response model becomes
a forced function tool, which the aggregator calls; instructor validates its arguments into the model.
The upstream records what each proposer and the aggregator received."""

from __future__ import annotations

from collections.abc import Iterator

import instructor
import pytest
from openai import OpenAI
from pydantic import BaseModel, field_validator

from moa_gateway.core.advice import ADVISE_INSTRUCTION
from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

ADVICE_ONLY = {"tools", "tool_choice", "parallel_tool_calls", "response_format"}


class Forecast(BaseModel):
    """The weather in a city."""

    city: str
    temperature_c: float
    conditions: list[str]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[instructor.Instructor]:
    with OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as openai_client:
        patched = instructor.from_openai(openai_client)
        assert patched.mode is instructor.Mode.TOOLS, "the default mode"
        yield patched


def test_a_response_model_gets_a_validated_instance(client: instructor.Instructor, gateway: Gateway) -> None:
    forecast = client.chat.completions.create(
        model="moa-1",
        response_model=Forecast,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        max_retries=0,
    )

    assert isinstance(forecast, Forecast)
    (aggregator,) = gateway.recorder.sent_to("omega")
    (tool,) = aggregator["tools"]
    assert tool["function"]["name"] == "Forecast"
    assert sorted(tool["function"]["parameters"]["required"]) == ["city", "conditions", "temperature_c"]
    assert aggregator["tool_choice"] == {"type": "function", "function": {"name": "Forecast"}}
    bodies = gateway.proposer_bodies()
    assert len(bodies) == len(PROPOSERS), "a forced tool choice on moa-1 (tools_mode advise): they advise"
    for body in bodies:
        assert not ADVICE_ONLY & body.keys()
        assert ADVISE_INSTRUCTION in body["messages"][0]["content"]


def test_with_the_bypass_pipeline_only_the_aggregator_answers(
    client: instructor.Instructor, gateway: Gateway
) -> None:
    forecast = client.chat.completions.create(
        model="bypass",
        response_model=Forecast,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        max_retries=0,
    )

    assert isinstance(forecast, Forecast)
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert aggregator["tool_choice"] == {"type": "function", "function": {"name": "Forecast"}}
    assert gateway.proposer_bodies() == [], "tools_mode bypass: a forced tool choice skips the proposers"


def test_a_list_of_models_comes_back_validated(client: instructor.Instructor, gateway: Gateway) -> None:
    forecasts = client.chat.completions.create(
        model="moa-1",
        response_model=list[Forecast],
        messages=[{"role": "user", "content": "What is the weather in Paris and in Rome?"}],
        max_retries=0,
    )

    assert isinstance(forecasts, list) and forecasts
    assert all(isinstance(f, Forecast) for f in forecasts)
    (aggregator,) = gateway.recorder.sent_to("omega")
    assert [tool["function"]["name"] for tool in aggregator["tools"]] == ["IterableForecast"]
    assert aggregator["tool_choice"] == {"type": "function", "function": {"name": "IterableForecast"}}


seen_cities: list[str] = []  # every city PickyForecast was asked to validate


class PickyForecast(BaseModel):
    """The weather in a city; the first answer is refused, as a failing validator would refuse it."""

    city: str
    temperature_c: float

    @field_validator("city")
    @classmethod
    def _refuse_the_first(cls, city: str) -> str:
        seen_cities.append(city)
        if len(seen_cities) == 1:
            raise ValueError("REFUSED-ONCE: name the city in full")
        return city


def retry_with_a_refusal(client: instructor.Instructor) -> PickyForecast:
    seen_cities.clear()
    forecast = client.chat.completions.create(
        model="moa-1",
        response_model=PickyForecast,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        max_retries=3,
    )
    assert isinstance(forecast, PickyForecast) and len(seen_cities) >= 2
    return forecast


def test_a_retry_after_a_validation_error_sends_the_error_as_a_tool_result(
    client: instructor.Instructor, gateway: Gateway
) -> None:
    retry_with_a_refusal(client)

    first, retry, *_ = gateway.recorder.sent_to("omega")
    forced = {"type": "function", "function": {"name": "PickyForecast"}}
    assert first["tool_choice"] == forced and retry["tool_choice"] == forced
    (call,) = retry["messages"][-2]["tool_calls"]
    assert retry["messages"][-1]["role"] == "tool" and retry["messages"][-1]["tool_call_id"] == call["id"]
    assert "REFUSED-ONCE" in retry["messages"][-1]["content"]
    bodies = gateway.proposer_bodies()
    for body in bodies:
        assert not ADVICE_ONLY & body.keys()
        assert "tool" not in [m["role"] for m in body["messages"]]
        assert not any("tool_calls" in m for m in body["messages"])
    called = {
        "role": "assistant",
        "content": f"[Called tool PickyForecast (id {call['id']}) with arguments: "
        f"{call['function']['arguments']}]",
    }
    retry_turn = [b for b in bodies if b["messages"][-2] == called]
    assert len(retry_turn) == len(PROPOSERS), "the retry's proposers read the call and its result as text"
    for body in retry_turn:
        result = body["messages"][-1]
        assert result["role"] == "user" and result["content"].startswith("[Result of tool call ")
        assert "REFUSED-ONCE" in result["content"]


def test_a_named_tool_result_still_shows_proposers_its_call_id(
    client: instructor.Instructor, gateway: Gateway
) -> None:
    retry_with_a_refusal(client)

    retry = gateway.recorder.sent_to("omega")[1]
    call_id = retry["messages"][-1]["tool_call_id"]
    assert retry["messages"][-1]["name"] == "PickyForecast", "instructor names the tool result"
    results = [b["messages"][-1]["content"] for b in gateway.proposer_bodies()]
    retry_turn = [r for r in results if r.startswith("[Result of tool call ")]
    assert len(retry_turn) == len(PROPOSERS)
    for result in retry_turn:
        assert result.startswith(f"[Result of tool call {call_id}]")
