"""The chain walker: each call's params (the model's and the request's), and a slot's fallbacks in order, open
circuits skipped, a stream switching only before its first token."""

from __future__ import annotations

from dataclasses import replace

from moa_gateway.core.events import FinalDelta, RunFailed, RunFinished
from moa_gateway.core.failures import FailureKind
from tests.support.core_fakes import FakeBackend, down, events_of, plan_of, run_moa, run_plan, system_of


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
