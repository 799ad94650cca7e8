"""A real agent loop, the OpenAI Agents SDK's `Runner`, through the gateway on a `fanout: user_turn`
pipeline: the aggregator calls the tool three times a user turn and then answers, and the proposers are
called once per user turn (the other iterations reuse their answers), over two user turns."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agents import (
    Agent,
    OpenAIChatCompletionsModel,
    Runner,
    TResponseInputItem,
    function_tool,
    set_tracing_disabled,
)
from openai import AsyncOpenAI

from moa_gateway.core.prompts import TURN_NOTE
from tests.support.configs import PROPOSERS
from tests.support.gateways import Gateway

set_tracing_disabled(True)  # nothing may try to reach api.openai.com


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0) as c:
        yield c


def looking_agent(client: AsyncOpenAI, lookups: list[str]) -> Agent[None]:
    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city.

        Args:
            city: The city.
        """
        lookups.append(city)
        return f"WEATHER-REPORT {len(lookups)}: {city}, 18 degrees, light rain"

    return Agent(
        name="forecaster",
        instructions="Answer questions about the weather, calling the tool for facts.",
        model=OpenAIChatCompletionsModel(model="per-turn", openai_client=client),
        tools=[get_weather],
    )


async def test_the_proposers_answer_once_per_user_turn_of_an_agent_loop(
    client: AsyncOpenAI, gateway: Gateway
) -> None:
    lookups: list[str] = []
    agent = looking_agent(client, lookups)

    first = await Runner.run(agent, "What is the weather in Lisbon this week?")
    after_first_turn = len(gateway.proposer_bodies())
    follow_up: list[TResponseInputItem] = [
        *first.to_input_list(),
        {"role": "user", "content": "And in Porto, this weekend?"},
    ]
    second = await Runner.run(agent, follow_up)

    assert len(lookups) == 6, "three tool calls in each user turn"
    assert "WEATHER-REPORT 3" in str(first.final_output) and "WEATHER-REPORT 6" in str(second.final_output)
    assert len(gateway.recorder.sent_to("looper")) == 8, "4 calls a user turn through the gateway"
    assert after_first_turn == len(PROPOSERS), "once in the first user turn"
    bodies = gateway.proposer_bodies()
    assert len(bodies) == 2 * len(PROPOSERS), "once in the second"
    for body in bodies:  # each asked about its turn, up to the user's message
        last = body["messages"][-1]
        assert last["role"] == "user" and last["content"] in (
            "What is the weather in Lisbon this week?",
            "And in Porto, this weekend?",
        )
    final = gateway.recorder.sent_to("looper")[-1]["messages"]
    references = [m for m in final if m["role"] == "user" and m["content"].startswith(TURN_NOTE)]
    assert len(references) == 1, "one references block, the second turn's"
    index = final.index(references[0])
    assert final[index + 1] == {"role": "user", "content": "And in Porto, this weekend?"}
    assert [m["role"] for m in final[index + 2 :]] == ["assistant", "tool"] * 3
