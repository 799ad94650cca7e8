"""Every call of a run is told as CallStarted ... CallFinished, with the slot it fills: also when the
pipeline deadline cuts it short, and when one layer asks the same model twice or a fallback stands in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace

import pytest

from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.events import CallDelta, CallFinished, CallStarted, Event, RunFailed, RunFinished
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Plan, TopologyOverride, make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.runner import Runner, RunOptions
from moa_gateway.core.types import Answer, CallSpec, Delta, RunInput, Usage
from tests.support.configs import simulated_config

QUESTION = [{"role": "user", "content": "Name a prime."}]


class SlowBackend:
    """Answers `<model>` in two streamed pieces after `delays[model]` seconds (default 0); models in
    `failing` fail."""

    def __init__(self, delays: dict[str, float] | None = None, failing: set[str] | None = None) -> None:
        self.delays = delays or {}
        self.failing = failing or set()

    def admit(self, model: str) -> bool:
        return True

    async def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        await asyncio.sleep(self.delays.get(spec.model, 0.0))
        if spec.model in self.failing:
            raise Failure(FailureKind.SERVER_ERROR, f"model {spec.model}: down", model=spec.model)
        if stream:
            yield Delta(text=spec.model[:2])
            yield Delta(text=spec.model[2:])
        yield Answer(spec.model, "stop", Usage(3, 2))


async def events_of(backend: SlowBackend, plan: Plan, **options: bool) -> list[Event]:
    catalogue = catalogue_of(simulated_config(extra_models=FALLBACKS))
    runner = Runner(backend, catalogue)
    stream = runner.events(plan, RunInput.plain(QUESTION), RunContext(RetryBudget(0)), RunOptions(**options))
    return [event async for event in stream]


FALLBACKS = {"beta": {"provider": "sim", "fallbacks": ["gamma"]}}


def plan_of(model: str, override: TopologyOverride | None = None) -> Plan:
    return make_plan(catalogue_of(simulated_config(extra_models=FALLBACKS)), model, override)


def calls(events: list[Event]) -> list[tuple[str, int, int, str]]:
    """(started|finished, layer, slot, model) in the order told."""
    told = []
    for event in events:
        if isinstance(event, CallStarted):
            told.append(("started", event.layer, event.slot, event.model))
        elif isinstance(event, CallFinished):
            told.append(("finished", event.record.layer, event.slot, event.record.model))
    return told


@pytest.mark.parametrize("live", [True, False], ids=["live-deltas", "buffered"])
async def test_calls_cut_short_by_the_pipeline_deadline_are_finished_before_the_run_fails(live: bool) -> None:
    plan = replace(plan_of("moa-1"), deadline_s=0.2)
    backend = SlowBackend(delays={"gamma": 5.0})

    events = await events_of(backend, plan, stream=True, proposer_deltas=live)

    told = calls(events)
    started = {(layer, slot, model) for what, layer, slot, model in told if what == "started"}
    finished = {(layer, slot, model) for what, layer, slot, model in told if what == "finished"}
    assert started == finished == {(1, 0, "alpha"), (1, 1, "beta"), (1, 2, "gamma")}
    gamma = next(e for e in events if isinstance(e, CallFinished) and e.record.model == "gamma")
    assert gamma.record.status == "cancelled"
    assert gamma.record.failure == FailureKind.PIPELINE_DEADLINE
    assert gamma.record.error == "model gamma: no answer within the pipeline deadline (0.2s)"
    assert gamma.record.latency_s == pytest.approx(0.2, abs=0.1)
    assert gamma.at_s == pytest.approx(0.2, abs=0.1)
    assert isinstance(events[-1], RunFailed)
    assert events[-1].failure.kind == FailureKind.PIPELINE_DEADLINE


async def test_the_final_call_cut_short_by_the_pipeline_deadline_is_finished_too() -> None:
    plan = replace(plan_of("moa-1"), deadline_s=0.2)

    events = await events_of(SlowBackend(delays={"omega": 5.0}), plan, stream=True)

    last_call = [e for e in events if isinstance(e, CallFinished)][-1]
    assert (last_call.record.model, last_call.record.role, last_call.record.status) == (
        "omega",
        "aggregator",
        "cancelled",
    )
    assert last_call.record.failure == FailureKind.PIPELINE_DEADLINE
    assert isinstance(events[-1], RunFailed)


async def test_the_same_model_twice_in_a_layer_is_told_apart_by_slot() -> None:
    plan = plan_of("moa-1", TopologyOverride([["alpha", "alpha", "beta"]], None))

    events = await events_of(SlowBackend(delays={"alpha": 0.01}), plan, stream=True, proposer_deltas=True)

    deltas: dict[int, str] = {}
    for event in events:
        if isinstance(event, CallDelta):
            deltas[event.slot] = deltas.get(event.slot, "") + event.delta.text
    assert deltas == {0: "alpha", 1: "alpha", 2: "beta"}
    assert sorted(calls(events)) == sorted(
        [
            ("started", 1, 0, "alpha"),
            ("started", 1, 1, "alpha"),
            ("started", 1, 2, "beta"),
            ("finished", 1, 0, "alpha"),
            ("finished", 1, 1, "alpha"),
            ("finished", 1, 2, "beta"),
            ("started", 2, 0, "omega"),
            ("finished", 2, 0, "omega"),
        ]
    )
    assert isinstance(events[-1], RunFinished)


async def test_a_fallback_is_told_in_the_slot_it_stands_in_for() -> None:
    events = await events_of(SlowBackend(failing={"beta"}), plan_of("moa-1"), proposer_deltas=True)

    in_slot_1 = [entry for entry in calls(events) if entry[1:3] == (1, 1)]
    assert in_slot_1 == [
        ("started", 1, 1, "beta"),
        ("finished", 1, 1, "beta"),
        ("started", 1, 1, "gamma"),
        ("finished", 1, 1, "gamma"),
    ]
    stand_in = next(
        e for e in events if isinstance(e, CallFinished) and e.slot == 1 and e.record.model == "gamma"
    )
    assert stand_in.record.fallback_for == "beta"
