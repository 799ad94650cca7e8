"""The MoA runner composing its phases, against a fake backend: the event stream in order, streamed or
collected (one path for both), a model alias's direct call, the pipeline deadline, and the first proposal
standing in for a failed aggregator. Each phase's own tests are in the module named after it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moa_gateway.core.events import FinalDelta, LayerFinished, RunFailed, RunFinished, RunStarted
from moa_gateway.core.failures import FailureKind
from tests.support.core_fakes import QUESTION, FakeBackend, down, events_of, plan_of, run_moa, system_of


async def test_every_call_carries_the_users_question() -> None:
    backend = FakeBackend()

    await run_moa(backend)

    assert len(backend.calls) == 7
    for call in backend.calls:
        assert call.messages[-1] == QUESTION[-1]


async def test_a_model_alias_is_one_direct_call_without_references() -> None:
    backend = FakeBackend()

    result = await run_moa(backend, "beta", {"temperature": 0.1})

    assert [(c.model, c.role, c.layer) for c in backend.calls] == [("beta", "direct", 0)]
    assert backend.calls[0].messages == QUESTION
    assert result.pipeline is None and result.text == "beta@L0"


async def test_a_stream_yields_the_aggregators_deltas_then_the_result() -> None:
    backend = FakeBackend()

    events = await events_of(backend, plan_of("moa-1"), stream=True)

    deltas = [e.delta.text for e in events if isinstance(e, FinalDelta)]
    assert deltas == ["ome", "ga@L2"]
    assert isinstance(events[-1], RunFinished)
    result = events[-1].result
    assert result.text == "omega@L2" and len(result.calls) == 4
    assert result.calls[-1].ttft_s == 0.001
    assert backend.streamed == [False, False, False, True], "proposers are not streamed unless asked"
    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. beta@L1\n3. gamma@L1")


async def test_the_events_tell_the_run_in_order() -> None:
    events = await events_of(FakeBackend(), plan_of("moa-1"), stream=True)

    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["RunStarted", "LayerStarted"]
    layer = kinds[2 : kinds.index("LayerFinished")]
    assert sorted(layer) == ["CallFinished"] * 3 + ["CallStarted"] * 3
    assert kinds[kinds.index("LayerFinished") :] == [
        "LayerFinished",
        "AgreementMeasured",
        "CallStarted",
        "FinalDelta",
        "FinalDelta",
        "CallFinished",
        "RunFinished",
    ]
    assert isinstance(events[0], RunStarted) and events[0].layers == 1
    finished = [e for e in events if isinstance(e, LayerFinished)]
    assert finished[0].answered == ["alpha", "beta", "gamma"] and finished[0].dropped == []


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_pipeline_deadline_bounds_the_whole_request(stream: bool) -> None:
    plan = replace(plan_of("moa-1"), deadline_s=0.2)

    events = await events_of(FakeBackend(delays={"omega": 30.0}), plan, stream=stream)

    failed = events[-1]
    assert isinstance(failed, RunFailed) and failed.failure.kind == FailureKind.PIPELINE_DEADLINE
    assert failed.failure.message == "moa-1: no answer within the pipeline deadline (0.2s)"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_best_proposal_answers_when_the_aggregator_fails_and_says_so(stream: bool) -> None:
    plan = replace(plan_of("moa-1"), best_proposal_fallback=True)

    events = await events_of(FakeBackend(failing={"omega": down("omega")}), plan, stream=stream)

    deltas = [e.delta.text for e in events if isinstance(e, FinalDelta)]
    assert deltas == (["alpha@L1"] if stream else [])
    assert isinstance(events[-1], RunFinished)
    result = events[-1].result
    assert result.text == "alpha@L1" and result.answered_by == "alpha"
    assert result.degraded == "aggregator_failed"
