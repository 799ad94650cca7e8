"""One proposer layer: its calls concurrent and cancelled with the run, its quorum (a failure naming each
model, of the kind they share) and its deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace

import pytest

from moa_gateway.core.events import CallFinished, RunFailed
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import RunContext
from moa_gateway.core.types import Answer, CallSpec, Delta, Usage
from tests.support.core_fakes import FakeBackend, down, events_of, plan_of, run_moa, run_plan, system_of


async def test_proposers_of_a_layer_run_concurrently() -> None:
    backend = FakeBackend()

    await run_moa(backend)

    assert backend.max_in_flight == 3


async def test_cancelling_a_run_cancels_its_proposers() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    class HangingBackend(FakeBackend):
        async def call(
            self, spec: CallSpec, context: RunContext, *, stream: bool
        ) -> AsyncGenerator[Delta | Answer, None]:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(spec.model)
                raise
            yield Answer("never", "stop", Usage())

    task = asyncio.create_task(run_moa(HangingBackend()))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["alpha", "beta", "gamma"]


async def test_when_every_proposer_fails_the_error_names_each_model() -> None:
    backend = FakeBackend(failing={m: down(m) for m in ["alpha", "beta", "gamma"]})

    with pytest.raises(Failure) as caught:
        await run_moa(backend)

    assert caught.value.kind == FailureKind.UPSTREAM
    assert caught.value.message.startswith("layer 1: 0 of 3 proposers answered, 1 needed (")
    for model in ["alpha", "beta", "gamma"]:
        assert f"model {model}: down" in caught.value.message
    assert all(c.layer == 1 for c in backend.calls), "nothing runs after a layer with no answers"


@pytest.mark.parametrize("kind", [FailureKind.TIMEOUT, FailureKind.REJECTED], ids=["timeout", "rejected"])
async def test_a_layer_failing_one_way_keeps_that_kind(kind: FailureKind) -> None:
    backend = FakeBackend(failing={m: down(m, kind) for m in ["alpha", "beta", "gamma"]})

    with pytest.raises(Failure) as caught:
        await run_moa(backend)

    assert caught.value.kind == kind


async def test_quorum_not_met_fails_naming_the_models() -> None:
    backend = FakeBackend(failing={"beta": down("beta"), "gamma": down("gamma")})
    plan = plan_of("moa-1")
    strict = replace(plan, layers=[replace(plan.layers[0], min_proposers=2)])

    with pytest.raises(Failure) as caught:
        await run_plan(backend, strict)

    assert caught.value.kind == FailureKind.UPSTREAM
    assert caught.value.message == (
        "layer 1: 1 of 3 proposers answered, 2 needed (model beta: down; model gamma: down)"
    )


async def test_layer_deadline_goes_on_with_the_answers_in_hand_and_cancels_stragglers() -> None:
    backend = FakeBackend(delays={"gamma": 30.0})
    plan = plan_of("moa-1")
    hurried = replace(plan, layers=[replace(plan.layers[0], deadline_s=0.2)])

    result = await run_plan(backend, hurried)

    gamma = next(c for c in result.calls if c.model == "gamma")
    assert (gamma.status, gamma.failure) == ("cancelled", FailureKind.LAYER_DEADLINE)
    assert gamma.error == "model gamma: no answer within the layer deadline (0.2s)"
    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. beta@L1")
    assert result.dropped == ["gamma"]


@pytest.mark.parametrize("live", [False, True], ids=["buffered", "live"])
async def test_layer_deadline_with_too_few_answers_is_a_timeout(live: bool) -> None:
    plan = plan_of("moa-1")
    hurried = replace(plan, layers=[replace(plan.layers[0], deadline_s=0.1, min_proposers=2)])

    events = await events_of(FakeBackend(delays={"alpha": 30.0, "beta": 30.0}), hurried, proposer_deltas=live)

    failed = events[-1]
    assert isinstance(failed, RunFailed) and failed.failure.kind == FailureKind.TIMEOUT
    assert failed.failure.message.startswith("layer 1: 1 of 3 proposers answered, 2 needed")
    told = [e.record.failure for e in events if isinstance(e, CallFinished) and e.record.model != "gamma"]
    assert told == [FailureKind.LAYER_DEADLINE] * 2, "the cut-off calls are told as such"
