"""The simulator's agent tricks through real HTTP, read by the official `openai` SDK: tool calls (whole
and streamed), structured outputs parsed into a pydantic model, reasoning, `n`, logprobs, embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pydantic
import pytest

from tests.support.asks import ASK_WEATHER
from tests.support.configs import SIM_KEY
from tests.support.servers import ServerThread

PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "The weather", "parameters": PARAMETERS},
    }
]


class Forecast(pydantic.BaseModel):
    city: str
    temperature_c: float = pydantic.Field(ge=-50, le=60)
    days: list[str] = pydantic.Field(min_length=2)
    rain: bool | None


@pytest.fixture
def client(sim_server: ServerThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{sim_server.url}/v1", api_key=SIM_KEY, max_retries=0) as c:
        yield c


def test_tools_get_a_tool_call_whose_arguments_fit_the_parameters(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="sim-alpha", messages=ASK_WEATHER, tools=TOOLS)

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)


def test_a_streamed_tool_call_is_reassembled_by_the_sdk(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="sim-alpha", messages=ASK_WEATHER, tools=TOOLS)
    argument_deltas = 0

    with client.chat.completions.stream(model="sim-alpha", messages=ASK_WEATHER, tools=TOOLS) as stream:
        for event in stream:
            argument_deltas += event.type == "tool_calls.function.arguments.delta"
        final = stream.get_final_completion()

    assert argument_deltas > 3
    (call,) = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(call.function.arguments), PARAMETERS)
    (whole_call,) = whole.choices[0].message.tool_calls or []
    assert whole_call.type == "function"
    assert (call.id, call.function.arguments) == (whole_call.id, whole_call.function.arguments)


def test_an_agent_loop_ends_after_the_tool_result(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="sim-alpha", messages=ASK_WEATHER, tools=TOOLS)
    message = first.choices[0].message
    assert message.tool_calls
    result = '{"city": "Paris", "temperature_c": 21, "sky": "clear"}'
    turn = [
        *ASK_WEATHER,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": result},
    ]

    second = client.chat.completions.create(model="sim-alpha", messages=turn, tools=TOOLS)

    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert f"Based on the tool result: {result}" in (second.choices[0].message.content or "")


def test_parse_reads_structured_output_into_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="sim-alpha", messages=ASK_WEATHER, response_format=Forecast
    )

    forecast = completion.choices[0].message.parsed
    assert isinstance(forecast, Forecast) and len(forecast.days) >= 2


def test_reasoning_content_and_tokens_reach_the_sdk(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-alpha", messages=ASK_WEATHER, reasoning_effort="low"
    )

    extra = completion.choices[0].message.model_extra or {}
    assert extra["reasoning_content"].startswith("Thinking about 'What is the weather in Paris?'")
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert 0 < (usage.completion_tokens_details.reasoning_tokens or 0) < usage.completion_tokens


def test_streamed_reasoning_comes_first(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="sim-alpha", messages=ASK_WEATHER, stream=True, extra_body={"simulate": {"reasoning": True}}
    )
    kinds = []
    for chunk in stream:
        delta = chunk.choices[0].delta
        if (delta.model_extra or {}).get("reasoning_content"):
            kinds.append("reasoning")
        elif delta.content:
            kinds.append("content")

    assert kinds[0] == "reasoning" and kinds[-1] == "content"
    assert kinds == sorted(kinds, reverse=True)  # every reasoning delta before every content delta


def test_n_gives_n_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="sim-alpha", messages=ASK_WEATHER, n=3)

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len({c.message.content for c in completion.choices}) == 3


def test_logprobs_reach_the_sdk(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="sim-alpha", messages=ASK_WEATHER, logprobs=True, top_logprobs=2
    )

    choice = completion.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob < 0 for t in choice.logprobs.content)


def test_embeddings_float_and_base64_decode_to_the_same_vector(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="sim-embed", input=["a cat", "a dog"], encoding_format="float")
    default = client.embeddings.create(model="sim-embed", input=["a cat", "a dog"])  # the SDK asks base64
    wide = client.embeddings.create(model="sim-embed", input="a cat", dimensions=32)

    assert [d.embedding for d in floats.data] == [d.embedding for d in default.data]
    assert len(floats.data[0].embedding) == 8 and floats.data[0].embedding != floats.data[1].embedding
    assert len(wide.data[0].embedding) == 32
    assert floats.usage.prompt_tokens == 4


def test_embeddings_play_faults(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(
            model="sim-embed", input="x", extra_body={"simulate": {"fault": "error_500"}}
        )
