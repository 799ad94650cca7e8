"""`fanout: user_turn`: the proposers answer once per user turn, their answers reused by the calls of an
agent loop (only assistant and tool messages added), for the same caller, pipeline and parameters."""

from __future__ import annotations

from typing import Any

from moa_gateway.core.caller import ANONYMOUS, Caller
from moa_gateway.core.panel_store import MemoryPanelStore
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, TURN_NOTE
from moa_gateway.core.reports import SavedBy
from moa_gateway.core.runner import Runner, collect
from moa_gateway.core.types import CallSpec, MoaResult, RunInput
from tests.support.core_fakes import FakeBackend, catalogue_with

ASK: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a weather agent."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
AFTER_ONE_TOOL = [
    *ASK,
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees, light rain"},
]
PROPOSERS = ["alpha", "beta", "gamma"]


class Turns:
    """One runner (so one panel store) for several calls, as a worker serves an agent loop."""

    def __init__(self, layers: int = 1, **pipeline: Any) -> None:
        self.backend = FakeBackend()
        self.catalogue = catalogue_with(layers=layers, **pipeline)
        self.store = MemoryPanelStore()
        self.runner = Runner(self.backend, self.catalogue, self.store)

    async def call(
        self,
        messages: list[dict[str, Any]],
        caller: Caller = ANONYMOUS,
        params: dict[str, Any] | None = None,
        model: str = "moa",
    ) -> tuple[MoaResult, list[CallSpec]]:
        """The run's result, and the upstream calls it made."""
        before = len(self.backend.calls)
        run = RunInput.plain(messages, params)
        events = self.runner.events(make_plan(self.catalogue, model), run, RunContext(RetryBudget(0), caller))
        result = await collect(events)
        return result, self.backend.calls[before:]


def proposers(calls: list[CallSpec]) -> list[str]:
    return [c.model for c in calls if c.role == "proposer"]


async def test_a_later_call_of_the_turn_reuses_the_proposals_and_runs_only_the_aggregator() -> None:
    turns = Turns(fanout="user_turn")

    first, first_calls = await turns.call(ASK)
    second, second_calls = await turns.call(AFTER_ONE_TOOL)

    assert proposers(first_calls) == PROPOSERS and not first.references_reused
    assert [(c.role, c.model) for c in second_calls] == [("aggregator", "omega")]
    assert second.references_reused
    assert [(c.role, c.model) for c in second.calls] == [("aggregator", "omega")], "only the calls made"
    assert second.calls_saved == {SavedBy.USER_TURN: 3}
    assert first.calls_saved == {}


async def test_the_aggregator_sees_the_whole_conversation_and_the_turns_references() -> None:
    turns = Turns(fanout="user_turn")

    await turns.call(ASK)
    _, calls = await turns.call(AFTER_ONE_TOOL)

    (aggregator,) = calls
    assert aggregator.messages[1:] == AFTER_ONE_TOOL[1:], "tool call and result included, as sent"
    system = aggregator.messages[0]["content"]
    assert system.startswith("You are a weather agent.\n\n" + TURN_NOTE + "\n\n" + DEFAULT_AGGREGATOR_PROMPT)
    assert system.endswith("\n1. alpha@L1\n2. beta@L1\n3. gamma@L1")


async def test_references_are_marked_as_written_before_the_turns_tool_results() -> None:
    """With before_last_user they also sit before the turn's tool call and result, and the aggregator's
    prompt of the first call is the prefix of the second's: a provider's cache serves all of it."""
    turns = Turns(fanout="user_turn", references="before_last_user")

    _, first = await turns.call(ASK)
    _, second = await turns.call(AFTER_ONE_TOOL)

    (agg1,) = [c for c in first if c.role == "aggregator"]
    (agg2,) = second
    assert [m["role"] for m in agg2.messages] == ["system", "user", "user", "assistant", "tool"]
    assert agg2.messages[1]["content"].startswith(TURN_NOTE + "\n\n" + DEFAULT_AGGREGATOR_PROMPT)
    assert agg2.messages[:3] == agg1.messages, "the first call's prompt is the second's prefix"
    assert agg2.messages[0] == ASK[0], "the client's system message is as sent"


async def test_proposers_are_asked_about_the_turn_up_to_the_user_message_only() -> None:
    """A turn met for the first time mid-loop (another worker served its start): the proposers still see
    the conversation to the last user message, and their panel is kept for the rest of the turn."""
    turns = Turns(fanout="user_turn")

    _, calls = await turns.call(AFTER_ONE_TOOL)
    _, later = await turns.call([*AFTER_ONE_TOOL, {"role": "assistant", "content": "Checking once more."}])

    assert proposers(calls) == PROPOSERS
    assert all(c.messages == ASK for c in calls if c.role == "proposer")
    assert proposers(later) == []


async def test_every_layer_is_reused_and_counted() -> None:
    turns = Turns(layers=2, fanout="user_turn")

    await turns.call(ASK)
    result, calls = await turns.call(AFTER_ONE_TOOL)

    assert [c.role for c in calls] == ["aggregator"]
    assert result.calls_saved == {SavedBy.USER_TURN: 6}
    assert result.text == "omega@L3" and "\n1. alpha@L2" in calls[0].messages[0]["content"]


async def test_a_new_user_message_is_a_new_turn() -> None:
    turns = Turns(fanout="user_turn")

    await turns.call(ASK)
    next_turn = [
        *AFTER_ONE_TOOL,
        {"role": "assistant", "content": "Rainy."},
        {"role": "user", "content": "And Rome?"},
    ]
    result, calls = await turns.call(next_turn)

    assert proposers(calls) == PROPOSERS and not result.references_reused


async def test_another_caller_does_not_get_the_turns_proposals() -> None:
    turns = Turns(fanout="user_turn")

    await turns.call(ASK, Caller("key-a"))
    _, other = await turns.call(AFTER_ONE_TOOL, Caller("key-b"))
    _, same = await turns.call(AFTER_ONE_TOOL, Caller("key-a"))

    assert proposers(other) == PROPOSERS
    assert proposers(same) == []


async def test_other_proposer_parameters_or_another_pipeline_are_another_turn() -> None:
    turns = Turns(fanout="user_turn")

    await turns.call(ASK, params={"temperature": 0.2})
    _, warmer = await turns.call(AFTER_ONE_TOOL, params={"temperature": 0.9})
    _, other_pipeline = await turns.call(AFTER_ONE_TOOL, params={"temperature": 0.2}, model="moa-1")

    assert proposers(warmer) == PROPOSERS
    assert proposers(other_pipeline) == PROPOSERS


async def test_anything_but_assistant_and_tool_messages_after_the_user_message_runs_the_proposers() -> None:
    turns = Turns(fanout="user_turn")

    await turns.call(ASK)
    _, calls = await turns.call([*AFTER_ONE_TOOL, {"role": "system", "content": "Be brief."}])

    assert proposers(calls) == PROPOSERS


async def test_every_call_is_the_default_and_runs_the_proposers_on_every_call() -> None:
    turns = Turns()

    await turns.call(ASK)
    result, calls = await turns.call(AFTER_ONE_TOOL)

    assert proposers(calls) == PROPOSERS and not result.references_reused
    (aggregator,) = [c for c in calls if c.role == "aggregator"]
    assert TURN_NOTE not in aggregator.messages[0]["content"]
    assert len(turns.store) == 0
