"""Where references go: the paper's system message (the default), or `references: before_last_user`, a
user message of their own just before the last user message, so the prompt before it stays the same."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from moa_gateway.config import ConfigError
from moa_gateway.core.advice import advisory_messages
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT, Injection, inject_references
from moa_gateway.core.runner import Runner, collect
from moa_gateway.core.types import RunInput
from tests.support.configs import simulated_config
from tests.support.core_fakes import FakeBackend, catalogue_with

BEFORE_LAST_USER = Injection("before_last_user")
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And times 3?"},
]


def test_before_last_user_puts_the_references_in_a_user_message_just_before_the_last_user_message() -> None:
    out = inject_references(
        CONVERSATION, ["It is 12.", "Twelve."], DEFAULT_AGGREGATOR_PROMPT, BEFORE_LAST_USER
    )

    assert out == [
        *CONVERSATION[:3],
        {"role": "user", "content": DEFAULT_AGGREGATOR_PROMPT + "\n1. It is 12.\n2. Twelve."},
        CONVERSATION[3],
    ]


def test_before_last_user_leaves_the_prompt_before_the_references_byte_identical() -> None:
    first = inject_references(CONVERSATION, ["12"], "P", BEFORE_LAST_USER)
    second = inject_references(CONVERSATION, ["twelve, as 4*3 is 12"], "P", BEFORE_LAST_USER)

    assert first[:3] == second[:3] == CONVERSATION[:3], "the client's system message is not touched"
    assert first[3] != second[3] and first[4:] == second[4:] == CONVERSATION[3:]


def test_the_clients_messages_are_untouched_by_either_placement() -> None:
    sent = copy.deepcopy(CONVERSATION)

    inject_references(sent, ["12"], "P", BEFORE_LAST_USER)
    inject_references(sent, ["12"], "P")

    assert sent == CONVERSATION


CALL = {"id": "c1", "type": "function", "function": {"name": "multiply", "arguments": "{}"}}


def test_before_last_user_keeps_the_turns_tool_messages_after_the_user_message() -> None:
    """In an agent loop the references precede the assistant's tool calls and their results."""
    loop = [
        *CONVERSATION,
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "12"},
    ]

    out = inject_references(loop, ["12"], "P", BEFORE_LAST_USER)

    assert [m["role"] for m in out] == ["system", "user", "assistant", "user", "user", "assistant", "tool"]
    assert out[3]["content"] == "P\n1. 12" and out[4:] == loop[3:]


def test_without_a_user_message_the_references_go_into_the_system_message() -> None:
    out = inject_references([{"role": "assistant", "content": "Hi"}], ["12"], "P", BEFORE_LAST_USER)

    assert out == [{"role": "system", "content": "P\n1. 12"}, {"role": "assistant", "content": "Hi"}]


def test_a_note_goes_before_the_prompt() -> None:
    out = inject_references(CONVERSATION, ["12"], "P", Injection("before_last_user", "Note."))

    assert out[3] == {"role": "user", "content": "Note.\n\nP\n1. 12"}


async def run_pipeline(backend: FakeBackend, messages: list[dict[str, Any]], **pipeline: Any) -> None:
    catalogue = catalogue_with(**pipeline)
    runner = Runner(backend, catalogue)
    events = runner.events(make_plan(catalogue, "moa"), RunInput.plain(messages), RunContext(RetryBudget(0)))
    await collect(events)


async def test_a_before_last_user_pipeline_leaves_every_calls_prefix_as_the_client_sent_it() -> None:
    backend = FakeBackend()
    sent = copy.deepcopy(CONVERSATION)

    await run_pipeline(backend, sent, references="before_last_user")

    layer1 = [c for c in backend.calls if c.layer == 1]
    later = [c for c in backend.calls if c.layer > 1]
    assert all(c.messages == CONVERSATION for c in layer1)
    assert len(later) == 4  # layer 2's three proposers, and the aggregator
    for call in later:
        assert call.messages[:3] == CONVERSATION[:3] and call.messages[4:] == CONVERSATION[3:]
        assert call.messages[3]["role"] == "user"
        assert call.messages[3]["content"].startswith(DEFAULT_AGGREGATOR_PROMPT + "\n1. alpha@L")
    assert sent == CONVERSATION, "the client's messages are untouched"


async def test_by_default_references_go_into_the_system_message_as_the_paper_does() -> None:
    backend = FakeBackend()

    await run_pipeline(backend, CONVERSATION)

    (final,) = [c for c in backend.calls if c.role == "aggregator"]
    expected = "You are a careful assistant.\n\n" + DEFAULT_AGGREGATOR_PROMPT
    assert final.messages[0] == {
        "role": "system",
        "content": expected + "\n1. alpha@L2\n2. beta@L2\n3. gamma@L2",
    }
    assert final.messages[1:] == CONVERSATION[1:]


def test_the_config_accepts_the_two_placements_only() -> None:
    assert (
        catalogue_with(references="before_last_user").pipelines["moa"].policy.references == "before_last_user"
    )
    assert catalogue_with().pipelines["moa"].policy.references == "system"
    with pytest.raises(ConfigError, match="references"):
        catalogue_with(references="after_everything")
    assert simulated_config().pipelines["moa"].references == "system"


async def test_in_the_proposers_view_references_go_before_the_users_message_not_a_rendered_tool_result() -> (
    None
):
    """Proposers see tool results as user messages; layer 2's references still go before the user's."""
    backend = FakeBackend()
    loop = [
        *CONVERSATION,
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "12"},
    ]
    catalogue = catalogue_with(references="before_last_user")
    view = advisory_messages(loop, tools_offered=False, result_chars=100)
    run = RunInput(loop, {}, view, {})

    await collect(
        Runner(backend, catalogue).events(make_plan(catalogue, "moa"), run, RunContext(RetryBudget(0)))
    )

    layer2 = [c for c in backend.calls if c.layer == 2]
    assert len(layer2) == 3
    for call in layer2:
        assert call.messages[3]["content"].startswith(DEFAULT_AGGREGATOR_PROMPT)
        assert call.messages[4:] == view[3:], "the user's message, the call and its rendered result follow"
