"""`fanout: user_turn` over real HTTP through the openai SDK: a two-iteration tool loop (the aggregator
calls the tool, then answers from its result) calls the proposers once; the second call reuses their
answers, says so, lists only the call it made, and its references are marked as written before the tool
result. The panel is the caller's own: another gateway key's identical turn runs the proposers again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, TURN_NOTE
from moa_gateway.settings import Settings
from tests.support.configs import PROPOSERS, remote_provider, topology
from tests.support.gateways import Gateway, recording_upstream, serve_gateway
from tests.support.metrics import Scrape

KEY_A, KEY_B = "turn-key-a-0123456789", "turn-key-b-0123456789"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SYSTEM = {"role": "system", "content": "You are a weather agent."}


def ask(city: str) -> list[Any]:
    """A user turn of its own (the gateway's panels outlive a test)."""
    return [SYSTEM, {"role": "user", "content": f"What is the weather in {city}?"}]


class Servers(Gateway):
    def client(self, key: str = KEY_A) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def saved(self, pipeline: str) -> float:
        scrape = Scrape(httpx.get(f"{self.url}/metrics").text)
        return scrape.value("moa_calls_saved_total", pipeline=pipeline, reason="user_turn")


@pytest.fixture(scope="module")
def module_servers() -> Iterator[Servers]:
    with recording_upstream() as (upstream_url, recorder):
        data = topology("remote", layers=1)
        data["providers"] = {"remote": remote_provider(upstream_url)}
        layers = [{"proposers": PROPOSERS}]
        data["pipelines"] = {
            "turn": {"layers": layers, "aggregator": "omega", "fanout": "user_turn"},
            "turn-cached": {
                "layers": layers,
                "aggregator": "omega",
                "fanout": "user_turn",
                "references": "before_last_user",
            },
        }
        settings = Settings(api_keys=SecretStr(f"{KEY_A}, {KEY_B}"))
        with serve_gateway(data, settings) as gateway:
            yield Servers(gateway.url, recorder)


@pytest.fixture
def servers(module_servers: Servers) -> Servers:
    module_servers.recorder.clear()
    return module_servers


def tool_result_turn(asked: list[Any], completion: Any, weather: str = "18 degrees, light rain") -> list[Any]:
    """The conversation after the client ran the tool the first completion called."""
    (call,) = completion.choices[0].message.tool_calls
    return [
        *asked,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": weather},
    ]


def moa_of(response: Any) -> dict[str, Any]:
    return dict((response.model_extra or {})["moa"])


@pytest.mark.parametrize("pipeline", ["turn", "turn-cached"])
def test_a_two_iteration_tool_loop_calls_the_proposers_once(servers: Servers, pipeline: str) -> None:
    saved_before = servers.saved(pipeline)
    asked = ask("Paris")
    with servers.client() as client:
        first = client.chat.completions.create(model=pipeline, messages=asked, tools=[WEATHER_TOOL])
        assert first.choices[0].finish_reason == "tool_calls"
        second = client.chat.completions.create(
            model=pipeline, messages=tool_result_turn(asked, first), tools=[WEATHER_TOOL]
        )

    assert second.choices[0].finish_reason == "stop" and not second.choices[0].message.tool_calls
    assert len(servers.proposer_bodies()) == 3, "each proposer once for the user turn"
    assert "references_reused" not in moa_of(first)
    moa = moa_of(second)
    assert moa["references_reused"] is True
    assert [(c["role"], c["model"]) for c in moa["calls"]] == [("aggregator", "omega")]
    assert second.usage is not None and second.usage.prompt_tokens == moa["calls"][0]["prompt_tokens"]
    assert servers.saved(pipeline) - saved_before == 3

    _, aggregator = servers.recorder.sent_to("omega")
    messages = aggregator["messages"]
    assert messages[-2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[-1]["role"] == "tool", "the aggregator sees the tool result"
    if pipeline == "turn":  # the paper's place, with the note
        assert messages[0]["content"].startswith(f"You are a weather agent.\n\n{TURN_NOTE}\n\n")
    else:  # before the user message, so before the tool call and its result too
        assert [m["role"] for m in messages] == ["system", "user", "user", "assistant", "tool"]
        assert messages[0] == asked[0] and messages[2] == asked[1]
        assert messages[1]["content"].startswith(f"{TURN_NOTE}\n\n{DEFAULT_AGGREGATOR_PROMPT}\n1. ")


def test_the_first_calls_prompt_is_the_prefix_of_the_seconds_with_before_last_user(servers: Servers) -> None:
    asked = ask("Oslo")
    with servers.client() as client:
        first = client.chat.completions.create(model="turn-cached", messages=asked, tools=[WEATHER_TOOL])
        client.chat.completions.create(
            model="turn-cached", messages=tool_result_turn(asked, first), tools=[WEATHER_TOOL]
        )

    one, two = servers.recorder.sent_to("omega")
    assert two["messages"][: len(one["messages"])] == one["messages"]
    prefix = json.dumps(one["messages"])[:-1]
    assert json.dumps(two["messages"]).startswith(prefix), "byte-identical as the provider reads it"


def test_a_streamed_call_of_the_turn_says_it_reused_the_references(servers: Servers) -> None:
    asked = ask("Rome")
    with servers.client() as client:
        first = client.chat.completions.create(model="turn", messages=asked, tools=[WEATHER_TOOL])
        stream = client.chat.completions.create(
            model="turn",
            messages=tool_result_turn(asked, first, "21 degrees, sunny"),
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "21 degrees, sunny" in text
    (last,) = [c for c in chunks if c.usage is not None]
    moa = moa_of(last)
    assert moa["references_reused"] is True and [c["role"] for c in moa["calls"]] == ["aggregator"]
    assert len(servers.proposer_bodies()) == 3


def test_another_keys_identical_turn_runs_the_proposers_again(servers: Servers) -> None:
    asked = ask("Lima")
    with servers.client(KEY_A) as a, servers.client(KEY_B) as b:
        first = a.chat.completions.create(model="turn", messages=asked, tools=[WEATHER_TOOL])
        loop = tool_result_turn(asked, first)
        theirs = b.chat.completions.create(model="turn", messages=loop, tools=[WEATHER_TOOL])
        assert len(servers.proposer_bodies()) == 6, "B's turn is B's own"
        mine = a.chat.completions.create(model="turn", messages=loop, tools=[WEATHER_TOOL])

    assert "references_reused" not in moa_of(theirs)
    assert moa_of(mine)["references_reused"] is True
    assert len(servers.proposer_bodies()) == 6
