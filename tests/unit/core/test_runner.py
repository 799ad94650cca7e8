"""The MoA runner against a fake backend: layer chaining, concurrency, params, failures, and the event
stream, streamed or collected (one path for both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace

import pytest

from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.events import (
    CallDelta,
    CallFinished,
    FinalDelta,
    LayerFinished,
    RunFailed,
    RunFinished,
    RunStarted,
)
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import TopologyOverride, make_plan
from moa_gateway.core.ports import RunContext
from moa_gateway.core.prompts import DEFAULT_AGGREGATOR_PROMPT
from moa_gateway.core.types import Answer, CallSpec, Delta, Usage
from tests.support.configs import simulated_config
from tests.support.core_fakes import (
    QUESTION,
    FakeBackend,
    down,
    events_of,
    plan_of,
    run_moa,
    run_plan,
    system_of,
)


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


async def test_every_call_carries_the_users_question() -> None:
    backend = FakeBackend()

    await run_moa(backend)

    assert len(backend.calls) == 7
    for call in backend.calls:
        assert call.messages[-1] == QUESTION[-1]


async def test_proposers_of_a_layer_run_concurrently() -> None:
    backend = FakeBackend()

    await run_moa(backend)

    assert backend.max_in_flight == 3


async def test_result_sums_usage_and_cost_over_every_call() -> None:
    result = await run_moa(FakeBackend())

    assert len(result.calls) == 7
    assert result.usage == Usage(70, 35)
    assert result.cost_usd == pytest.approx(3.5)
    assert [(c.layer, c.role) for c in result.calls][-1] == (3, "aggregator")


async def test_a_model_alias_is_one_direct_call_without_references() -> None:
    backend = FakeBackend()

    result = await run_moa(backend, "beta", {"temperature": 0.1})

    assert [(c.model, c.role, c.layer) for c in backend.calls] == [("beta", "direct", 0)]
    assert backend.calls[0].messages == QUESTION
    assert result.pipeline is None and result.text == "beta@L0"


def test_unknown_model_is_model_not_found() -> None:
    with pytest.raises(Failure) as caught:
        plan_of("gpt-9")
    assert caught.value.kind == FailureKind.MODEL_NOT_FOUND


async def test_request_params_reach_the_aggregator_and_proposers_unless_pinned() -> None:
    backend = FakeBackend()
    pinned = {"alpha": {"provider": "sim", "params": {"temperature": 0.9, "max_tokens": 64}}}

    await run_moa(backend, "moa-1", {"temperature": 0.2, "max_tokens": 10, "seed": 7}, extra_models=pinned)

    by_model = {c.model: c.params for c in backend.calls}
    assert by_model["alpha"] == {"temperature": 0.9, "max_tokens": 64, "seed": 7}
    assert by_model["beta"] == {"temperature": 0.2, "max_tokens": 10, "seed": 7}
    assert by_model["omega"] == {"temperature": 0.2, "max_tokens": 10, "seed": 7}


async def test_aggregator_params_from_config_yield_to_the_request() -> None:
    backend = FakeBackend()
    omega = {"omega": {"provider": "sim", "params": {"temperature": 0.9, "top_p": 0.5}}}

    await run_moa(backend, "moa-1", {"temperature": 0.2}, extra_models=omega)

    assert backend.calls[-1].params == {"temperature": 0.2, "top_p": 0.5}


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


async def test_an_aggregator_failure_fails_the_request() -> None:
    with pytest.raises(Failure, match="omega"):
        await run_moa(FakeBackend(failing={"omega": down("omega")}))


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


async def test_a_failed_proposer_is_replaced_by_its_fallback() -> None:
    backend = FakeBackend(failing={"beta": down("beta")})

    result = await run_moa(
        backend, "moa-1", extra_models={"beta": {"provider": "sim", "fallbacks": ["omega"]}}
    )

    layer1 = [(c.model, c.status, c.fallback_for) for c in result.calls if c.layer == 1]
    assert layer1 == [
        ("alpha", "ok", None),
        ("beta", "error", None),
        ("omega", "ok", "beta"),
        ("gamma", "ok", None),
    ]
    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. omega@L1\n3. gamma@L1")
    assert result.dropped == []


async def test_a_proposer_with_an_open_circuit_is_skipped_not_called() -> None:
    backend = FakeBackend(open_circuits={"gamma"})

    result = await run_moa(backend, "moa-1")

    assert "gamma" not in [c.model for c in backend.calls]
    skipped = [c for c in result.calls if c.status == "skipped"]
    assert [(c.model, c.failure) for c in skipped] == [("gamma", FailureKind.CIRCUIT_OPEN)]
    assert result.dropped == ["gamma"]


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


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_pipeline_deadline_bounds_the_whole_request(stream: bool) -> None:
    plan = replace(plan_of("moa-1"), deadline_s=0.2)

    events = await events_of(FakeBackend(delays={"omega": 30.0}), plan, stream=stream)

    failed = events[-1]
    assert isinstance(failed, RunFailed) and failed.failure.kind == FailureKind.PIPELINE_DEADLINE
    assert failed.failure.message == "moa-1: no answer within the pipeline deadline (0.2s)"


async def test_aggregator_fallbacks_are_tried_in_order() -> None:
    plan = replace(plan_of("moa-1"), final_chain=["omega", "gamma"])

    result = await run_plan(FakeBackend(failing={"omega": down("omega")}), plan)

    assert result.text == "gamma@L2" and result.answered_by == "gamma"
    assert [(c.model, c.status, c.fallback_for) for c in result.calls[-2:]] == [
        ("omega", "error", None),
        ("gamma", "ok", "omega"),
    ]


async def test_an_aggregator_with_an_open_circuit_gives_way_to_its_fallback_but_the_last_is_tried() -> None:
    plan = replace(plan_of("moa-1"), final_chain=["omega", "gamma"])

    skipped = await run_plan(FakeBackend(open_circuits={"omega"}), plan)
    last = await run_plan(FakeBackend(open_circuits={"omega", "gamma"}), plan)

    assert skipped.answered_by == "gamma" and skipped.calls[-2].status == "skipped"
    assert last.answered_by == "gamma", "the chain's last model is called even with its circuit open"


async def test_when_the_aggregator_chain_fails_the_error_lists_every_attempt() -> None:
    plan = replace(plan_of("moa-1"), final_chain=["omega", "gamma"])

    with pytest.raises(Failure) as caught:
        await run_plan(FakeBackend(failing={"omega": down("omega"), "gamma": down("gamma")}), plan)

    assert caught.value.kind == FailureKind.UPSTREAM
    assert caught.value.message == (
        "moa-1: the aggregator and its fallbacks all failed (model omega: down; model gamma: down)"
    )


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


async def test_a_stream_falls_back_before_its_first_token() -> None:
    plan = replace(plan_of("moa-1"), final_chain=["omega", "beta"])

    events = await events_of(FakeBackend(failing={"omega": down("omega")}), plan, stream=True)

    assert [e.delta.text for e in events if isinstance(e, FinalDelta)] == ["bet", "a@L2"]
    assert isinstance(events[-1], RunFinished) and events[-1].result.answered_by == "beta"


async def test_a_stream_that_fails_after_its_first_token_fails_the_run_without_switching() -> None:
    backend = FakeBackend(fail_after_first_delta={"omega"})
    plan = replace(plan_of("moa-1"), final_chain=["omega", "beta"])

    events = await events_of(backend, plan, stream=True)

    assert [e.delta.text for e in events if isinstance(e, FinalDelta)] == ["ome"]
    assert isinstance(events[-1], RunFailed) and events[-1].failure.kind == FailureKind.MID_STREAM
    assert "beta" not in [c.model for c in backend.calls if c.role == "aggregator"]


def test_a_request_may_override_the_pipelines_topology() -> None:
    catalogue = catalogue_of(simulated_config())

    plan = make_plan(
        catalogue, "moa", TopologyOverride(layers=[["gamma"], ["alpha", "beta"]], aggregator="beta")
    )

    assert [layer.proposers for layer in plan.layers] == [["gamma"], ["alpha", "beta"]]
    assert plan.final_chain == ["beta"]
    with pytest.raises(Failure) as caught:
        make_plan(catalogue, "alpha", TopologyOverride(aggregator="beta"))
    assert caught.value.param == "moa"
    with pytest.raises(Failure) as unknown:
        make_plan(catalogue, "moa", TopologyOverride(layers=[["alpha", "gpt-9"]]))
    assert unknown.value.param == "moa.layers[0][1]", "an unknown alias is refused when planning"


def test_an_override_is_checked_before_the_model_is_resolved() -> None:
    catalogue = catalogue_of(simulated_config())

    with pytest.raises(Failure) as caught:
        make_plan(catalogue, "gpt-9", TopologyOverride(layers=[["bogus"]]))

    assert caught.value.kind == FailureKind.INVALID_REQUEST
    assert caught.value.param == "moa.layers[0][0]", "as the route did before the planner checked overrides"
