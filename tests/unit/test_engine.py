"""The MoA engine against a fake backend: layer chaining, concurrency, params, failures, streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

import pytest

from app.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from app.moa.engine import MoaEngine
from app.moa.prompts import DEFAULT_AGGREGATOR_PROMPT
from app.moa.types import Answer, CallSpec, MoaResult, TopologyOverride, Usage
from tests.conftest import simulated_config

QUESTION = [{"role": "user", "content": "Name a prime."}]


class FakeBackend:
    """Answers `<model>@L<layer>`; records every call; can fail, delay or refuse (open circuit) chosen
    models; counts concurrency."""

    def __init__(
        self,
        failing: dict[str, UpstreamError] | None = None,
        delays: dict[str, float] | None = None,
        open_circuits: set[str] | None = None,
    ) -> None:
        self.calls: list[CallSpec] = []
        self.failing = failing or {}
        self.delays = delays or {}
        self.open_circuits = open_circuits or set()
        self.in_flight = 0
        self.max_in_flight = 0

    def admit(self, model: str) -> bool:
        return model not in self.open_circuits

    async def complete(self, spec: CallSpec) -> Answer:
        self.calls.append(spec)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delays.get(spec.model, 0.01))  # let the other calls of the layer start
        finally:
            self.in_flight -= 1
        if spec.model in self.failing:
            raise self.failing[spec.model]
        return Answer(f"{spec.model}@L{spec.layer}", "stop", Usage(10, 5), cost_usd=0.5)

    async def stream(self, spec: CallSpec) -> AsyncGenerator[str | Answer, None]:
        self.calls.append(spec)
        if spec.model in self.failing:
            raise self.failing[spec.model]
        for part in ["Hel", "lo"]:
            yield part
        yield Answer("Hello", "stop", Usage(3, 2), cost_usd=0.25, ttft_s=0.001)


def engine(backend: FakeBackend, **config: Any) -> MoaEngine:
    return MoaEngine(simulated_config(**config), backend)


def system_of(spec: CallSpec) -> str:
    assert spec.messages[0]["role"] == "system"
    content = spec.messages[0]["content"]
    assert isinstance(content, str)
    return content


async def test_layer_one_sees_the_plain_conversation_and_later_calls_see_the_previous_layer() -> None:
    backend = FakeBackend()
    moa = engine(backend)

    result = await moa.run(moa.plan("moa"), QUESTION, {})

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
    moa = engine(backend)

    await moa.run(moa.plan("moa"), QUESTION, {})

    assert len(backend.calls) == 7
    for call in backend.calls:
        assert call.messages[-1] == QUESTION[-1]


async def test_proposers_of_a_layer_run_concurrently() -> None:
    backend = FakeBackend()
    moa = engine(backend)

    await moa.run(moa.plan("moa"), QUESTION, {})

    assert backend.max_in_flight == 3


async def test_result_sums_usage_and_cost_over_every_call() -> None:
    moa = engine(FakeBackend())

    result = await moa.run(moa.plan("moa"), QUESTION, {})

    assert len(result.calls) == 7
    assert result.usage == Usage(70, 35)
    assert result.cost_usd == pytest.approx(3.5)
    assert [(c.layer, c.role) for c in result.calls][-1] == (3, "aggregator")


async def test_a_model_alias_is_one_direct_call_without_references() -> None:
    backend = FakeBackend()
    moa = engine(backend)

    result = await moa.run(moa.plan("beta"), QUESTION, {"temperature": 0.1})

    assert [(c.model, c.role, c.layer) for c in backend.calls] == [("beta", "direct", 0)]
    assert backend.calls[0].messages == QUESTION
    assert result.pipeline is None and result.text == "beta@L0"


async def test_unknown_model_is_model_not_found() -> None:
    with pytest.raises(ModelNotFoundError):
        engine(FakeBackend()).plan("gpt-9")


async def test_request_params_reach_the_aggregator_and_proposers_unless_pinned() -> None:
    backend = FakeBackend()
    pinned = {"alpha": {"provider": "sim", "params": {"temperature": 0.9, "max_tokens": 64}}}
    moa = engine(backend, extra_models=pinned)

    await moa.run(moa.plan("moa-1"), QUESTION, {"temperature": 0.2, "max_tokens": 10, "seed": 7})

    by_model = {c.model: c.params for c in backend.calls}
    assert by_model["alpha"] == {"temperature": 0.9, "max_tokens": 64, "seed": 7}
    assert by_model["beta"] == {"temperature": 0.2, "max_tokens": 10, "seed": 7}
    assert by_model["omega"] == {"temperature": 0.2, "max_tokens": 10, "seed": 7}


async def test_aggregator_params_from_config_yield_to_the_request() -> None:
    backend = FakeBackend()
    moa = engine(
        backend, extra_models={"omega": {"provider": "sim", "params": {"temperature": 0.9, "top_p": 0.5}}}
    )

    await moa.run(moa.plan("moa-1"), QUESTION, {"temperature": 0.2})

    assert backend.calls[-1].params == {"temperature": 0.2, "top_p": 0.5}


async def test_a_failed_proposer_is_dropped_and_the_layer_goes_on() -> None:
    backend = FakeBackend(failing={"beta": UpstreamError("model beta: boom", model="beta")})
    moa = engine(backend)

    result = await moa.run(moa.plan("moa-1"), QUESTION, {})

    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. gamma@L1")
    failed = [c for c in result.calls if c.status == "error"]
    assert [(c.model, c.error) for c in failed] == [("beta", "model beta: boom")]
    assert result.usage == Usage(30, 15), "a failed call adds no usage"


async def test_when_every_proposer_fails_the_error_names_each_model() -> None:
    failing = {m: UpstreamError(f"model {m}: down", model=m) for m in ["alpha", "beta", "gamma"]}
    backend = FakeBackend(failing=failing)
    moa = engine(backend)

    with pytest.raises(UpstreamError) as caught:
        await moa.run(moa.plan("moa"), QUESTION, {})

    assert caught.value.status_code == 502
    assert caught.value.message.startswith("layer 1: 0 of 3 proposers answered, 1 needed (")
    for model in ["alpha", "beta", "gamma"]:
        assert f"model {model}: down" in caught.value.message
    assert all(c.layer == 1 for c in backend.calls), "nothing runs after a layer with no answers"


@pytest.mark.parametrize(
    ("error", "status"),
    [(UpstreamTimeoutError, 504), (UpstreamRejectedError, 400)],
    ids=["timeout", "rejected"],
)
async def test_a_layer_failing_one_way_keeps_that_status(error: type[UpstreamError], status: int) -> None:
    backend = FakeBackend(failing={m: error(f"model {m}: x", model=m) for m in ["alpha", "beta", "gamma"]})
    moa = engine(backend)

    with pytest.raises(UpstreamError) as caught:
        await moa.run(moa.plan("moa"), QUESTION, {})

    assert caught.value.status_code == status


async def test_an_aggregator_failure_fails_the_request() -> None:
    moa = engine(FakeBackend(failing={"omega": UpstreamError("model omega: down", model="omega")}))

    with pytest.raises(UpstreamError, match="omega"):
        await moa.run(moa.plan("moa"), QUESTION, {})


async def test_stream_yields_the_aggregators_deltas_then_the_result() -> None:
    backend = FakeBackend()
    moa = engine(backend)

    items = [item async for item in moa.stream(moa.plan("moa-1"), QUESTION, {})]

    assert items[:2] == ["Hel", "lo"]
    result = items[2]
    assert isinstance(result, MoaResult)
    assert result.text == "Hello" and len(result.calls) == 4
    assert result.calls[-1].ttft_s == 0.001
    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. beta@L1\n3. gamma@L1")


async def test_cancelling_a_request_cancels_its_proposers() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    class HangingBackend(FakeBackend):
        async def complete(self, spec: CallSpec) -> Answer:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(spec.model)
                raise
            raise AssertionError("unreachable")

    moa = engine(HangingBackend())
    task = asyncio.create_task(moa.run(moa.plan("moa"), QUESTION, {}))
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["alpha", "beta", "gamma"]


def down(model: str) -> UpstreamError:
    return UpstreamError(f"model {model}: down", model=model)


async def test_a_failed_proposer_is_replaced_by_its_fallback() -> None:
    backend = FakeBackend(failing={"beta": down("beta")})
    moa = engine(backend, extra_models={"beta": {"provider": "sim", "fallbacks": ["omega"]}})

    result = await moa.run(moa.plan("moa-1"), QUESTION, {})

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
    moa = engine(backend)

    result = await moa.run(moa.plan("moa-1"), QUESTION, {})

    assert "gamma" not in [c.model for c in backend.calls]
    skipped = [c for c in result.calls if c.status == "skipped"]
    assert [(c.model, c.error_code) for c in skipped] == [("gamma", "circuit_open")]
    assert result.dropped == ["gamma"]


async def test_quorum_not_met_fails_naming_the_models() -> None:
    backend = FakeBackend(failing={"beta": down("beta"), "gamma": down("gamma")})
    moa = engine(backend, extra_models={})
    plan = moa.plan("moa-1")
    strict = replace(plan, layers=[replace(plan.layers[0], min_proposers=2)])

    with pytest.raises(UpstreamError) as caught:
        await moa.run(strict, QUESTION, {})

    assert caught.value.status_code == 502
    assert caught.value.message == (
        "layer 1: 1 of 3 proposers answered, 2 needed (model beta: down; model gamma: down)"
    )


async def test_layer_deadline_goes_on_with_the_answers_in_hand_and_cancels_stragglers() -> None:
    backend = FakeBackend(delays={"gamma": 30.0})
    moa = engine(backend)
    plan = moa.plan("moa-1")
    hurried = replace(plan, layers=[replace(plan.layers[0], deadline_s=0.2)])

    result = await moa.run(hurried, QUESTION, {})

    gamma = next(c for c in result.calls if c.model == "gamma")
    assert (gamma.status, gamma.error_code) == ("cancelled", "layer_deadline")
    assert gamma.error == "model gamma: no answer within the layer deadline (0.2s)"
    assert system_of(backend.calls[-1]).endswith("\n1. alpha@L1\n2. beta@L1")
    assert result.dropped == ["gamma"]


async def test_layer_deadline_with_too_few_answers_is_504() -> None:
    moa = engine(FakeBackend(delays={"alpha": 30.0, "beta": 30.0}))
    plan = moa.plan("moa-1")
    hurried = replace(plan, layers=[replace(plan.layers[0], deadline_s=0.1, min_proposers=2)])

    with pytest.raises(UpstreamTimeoutError, match="layer 1: 1 of 3 proposers answered, 2 needed"):
        await moa.run(hurried, QUESTION, {})


async def test_pipeline_deadline_bounds_the_whole_request() -> None:
    moa = engine(FakeBackend(delays={"omega": 30.0}))
    plan = replace(moa.plan("moa-1"), deadline_s=0.2)

    with pytest.raises(UpstreamTimeoutError, match=r"moa-1: no answer within the pipeline deadline \(0.2s\)"):
        await moa.run(plan, QUESTION, {})


async def test_aggregator_fallbacks_are_tried_in_order() -> None:
    backend = FakeBackend(failing={"omega": down("omega")})
    moa = engine(backend)
    plan = replace(moa.plan("moa-1"), final_chain=["omega", "gamma"])

    result = await moa.run(plan, QUESTION, {})

    assert result.text == "gamma@L2" and result.answered_by == "gamma"
    assert [(c.model, c.status, c.fallback_for) for c in result.calls[-2:]] == [
        ("omega", "error", None),
        ("gamma", "ok", "omega"),
    ]


async def test_when_the_aggregator_chain_fails_the_error_lists_every_attempt() -> None:
    moa = engine(FakeBackend(failing={"omega": down("omega"), "gamma": down("gamma")}))
    plan = replace(moa.plan("moa-1"), final_chain=["omega", "gamma"])

    with pytest.raises(UpstreamError) as caught:
        await moa.run(plan, QUESTION, {})

    assert caught.value.status_code == 502
    assert caught.value.message == (
        "moa-1: the aggregator and its fallbacks all failed (model omega: down; model gamma: down)"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_best_proposal_answers_when_the_aggregator_fails_and_says_so(stream: bool) -> None:
    moa = engine(FakeBackend(failing={"omega": down("omega")}))
    plan = replace(moa.plan("moa-1"), best_proposal_fallback=True)

    if stream:
        items = [i async for i in moa.stream(plan, QUESTION, {})]
        assert items[0] == "alpha@L1"
        result = items[-1]
        assert isinstance(result, MoaResult)
    else:
        result = await moa.run(plan, QUESTION, {})

    assert result.text == "alpha@L1" and result.answered_by == "alpha"
    assert result.degraded == "aggregator_failed"


async def test_a_stream_falls_back_before_its_first_token() -> None:
    backend = FakeBackend(failing={"omega": down("omega")})
    moa = engine(backend)
    plan = replace(moa.plan("moa-1"), final_chain=["omega", "beta"])

    items = [i async for i in moa.stream(plan, QUESTION, {})]

    assert items[:2] == ["Hel", "lo"]
    result = items[-1]
    assert isinstance(result, MoaResult) and result.answered_by == "beta"


def test_a_request_may_override_the_pipelines_topology() -> None:
    moa = engine(FakeBackend())

    plan = moa.plan("moa", TopologyOverride(layers=[["gamma"], ["alpha", "beta"]], aggregator="beta"))

    assert [layer.proposers for layer in plan.layers] == [["gamma"], ["alpha", "beta"]]
    assert plan.final_chain == ["beta"]
    with pytest.raises(InvalidRequestError):
        moa.plan("alpha", TopologyOverride(aggregator="beta"))
