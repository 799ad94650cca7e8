"""The proposer phase: layer k sees layer k-1's answers, a failed proposer is dropped, and proposers' deltas
come out only when asked for, as they arrive."""

from __future__ import annotations

from moa_gateway.core.events import CallDelta, CallFinished, RunFinished
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT
from moa_gateway.core.types import Usage
from tests.support.core_fakes import QUESTION, FakeBackend, events_of, plan_of, run_moa, system_of


async def test_layer_one_sees_the_plain_conversation_and_later_calls_see_the_previous_layer() -> None:
    backend = FakeBackend()

    result = await run_moa(backend)

    layer1 = [c for c in backend.calls if c.layer == 1]
    layer2 = [c for c in backend.calls if c.layer == 2]
    final = [c for c in backend.calls if c.role == "aggregator"]
    assert [c.model for c in layer1] == ["alpha", "beta", "gamma"]
    assert all(c.messages == QUESTION for c in layer1)
    expected_l2 = DEFAULT_AGGREGATOR_PROMPT + "\n1. alpha@L1\n2. beta@L1\n3. gamma@L1"
    assert [system_of(c) for c in layer2] == [expected_l2] * 3
    assert len(final) == 1 and final[0].layer == 3
    assert system_of(final[0]) == DEFAULT_AGGREGATOR_PROMPT + "\n1. alpha@L2\n2. beta@L2\n3. gamma@L2"
    assert result.text == "omega@L3"


async def test_a_failed_proposer_is_dropped_and_the_layer_goes_on() -> None:
    backend = FakeBackend(
        failing={"beta": Failure(FailureKind.SERVER_ERROR, "model beta: boom", model="beta")}
    )

    result = await run_moa(backend, "moa-1")

    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. gamma@L1")
    failed = [c for c in result.calls if c.status == "error"]
    assert [(c.model, c.error, c.failure) for c in failed] == [
        ("beta", "model beta: boom", FailureKind.SERVER_ERROR)
    ]
    assert result.usage == Usage(30, 15), "a failed call adds no usage"


async def test_proposer_deltas_come_only_when_asked_for_and_as_they_arrive() -> None:
    quiet = await events_of(FakeBackend(), plan_of("moa-1"), stream=True)
    backend = FakeBackend(delays={"gamma": 0.2})
    live = await events_of(backend, plan_of("moa-1"), stream=True, proposer_deltas=True)

    assert not [e for e in quiet if isinstance(e, CallDelta)]
    deltas = [e for e in live if isinstance(e, CallDelta)]
    assert {(e.model, e.delta.text) for e in deltas} == {
        (m, t) for m in ["alpha", "beta", "gamma"] for t in [f"{m[:3]}", f"{m[3:]}@L1"]
    }
    alpha_done = next(
        i for i, e in enumerate(live) if isinstance(e, CallFinished) and e.record.model == "alpha"
    )
    gamma_first = next(i for i, e in enumerate(live) if isinstance(e, CallDelta) and e.model == "gamma")
    assert alpha_done < gamma_first, "alpha's end is told while gamma still works"
    assert backend.streamed == [True, True, True, True]
    assert isinstance(live[-1], RunFinished) and live[-1].result.text == "omega@L2"
