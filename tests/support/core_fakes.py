"""A fake ChatBackend and the runner helpers the core's unit tests share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

from moa_gateway.config import parse_config
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.events import Event
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, Plan, make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.runner import Runner, RunOptions, collect
from moa_gateway.core.types import Answer, CallSpec, Delta, MoaResult, RunInput, Usage
from tests.support.configs import simulated_config, topology

QUESTION = [{"role": "user", "content": "Name a prime."}]


def down(model: str, kind: FailureKind = FailureKind.SERVER_ERROR) -> Failure:
    return Failure(kind, f"model {model}: down", model=model)


class FakeBackend:
    """Answers `<model>@L<layer>` (streamed: "Hel", "lo"), or what `reply` says for the call; records
    every call; can fail, delay or refuse (open circuit) chosen models; counts concurrency."""

    def __init__(
        self,
        failing: dict[str, Failure] | None = None,
        delays: dict[str, float] | None = None,
        open_circuits: set[str] | None = None,
        fail_after_first_delta: set[str] | None = None,
        reply: Callable[[CallSpec], str | None] | None = None,
    ) -> None:
        self.calls: list[CallSpec] = []
        self.streamed: list[bool] = []
        self.failing = failing or {}
        self.delays = delays or {}
        self.open_circuits = open_circuits or set()
        self.fail_after_first_delta = fail_after_first_delta or set()
        self.reply = reply
        self.in_flight = 0
        self.max_in_flight = 0

    def admit(self, model: str) -> bool:
        return model not in self.open_circuits

    async def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        self.calls.append(spec)
        self.streamed.append(stream)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delays.get(spec.model, 0.01))  # let the other calls of the layer start
        finally:
            self.in_flight -= 1
        if spec.model in self.failing:
            raise self.failing[spec.model]
        said = None if self.reply is None else self.reply(spec)
        text = f"{spec.model}@L{spec.layer}" if said is None else said
        if stream:
            yield Delta(text=text[:3])
            if spec.model in self.fail_after_first_delta:
                raise Failure(FailureKind.MID_STREAM, f"model {spec.model}: cut", model=spec.model)
            yield Delta(text=text[3:])
        yield Answer(text, "stop", Usage(10, 5), cost_usd=0.5, ttft_s=0.001)


def runner(backend: FakeBackend, **config: Any) -> tuple[Runner, Any]:
    catalogue = catalogue_of(simulated_config(**config))
    return Runner(backend, catalogue), catalogue


async def events_of(
    backend: FakeBackend, plan: Plan, params: dict[str, Any] | None = None, **options: bool
) -> list[Event]:
    run, _ = runner(backend)
    stream = run.events(
        plan, RunInput.plain(QUESTION, params), RunContext(RetryBudget(0)), RunOptions(**options)
    )
    return [event async for event in stream]


async def run_moa(
    backend: FakeBackend, model: str = "moa", params: dict[str, Any] | None = None, **config: Any
) -> MoaResult:
    run, catalogue = runner(backend, **config)
    return await collect(
        run.events(make_plan(catalogue, model), RunInput.plain(QUESTION, params), RunContext(RetryBudget(0)))
    )


async def run_plan(backend: FakeBackend, plan: Plan) -> MoaResult:
    run, _ = runner(backend)
    return await collect(run.events(plan, RunInput.plain(QUESTION), RunContext(RetryBudget(0))))


def catalogue_with(layers: int = 2, **pipeline: Any) -> Catalogue:
    """The simulated config's catalogue, its pipelines `moa` (`layers` layers) and `moa-1` with the
    pipeline options given (say, `references="before_last_user"`)."""
    data = {"providers": {"sim": {"type": "simulated"}}, **topology("sim", layers=layers)}
    for entry in data["pipelines"].values():
        entry.update(pipeline)
    return catalogue_of(parse_config(data, "test"))


def plan_of(model: str, **config: Any) -> Plan:
    return make_plan(catalogue_of(simulated_config(**config)), model)


def system_of(spec: CallSpec) -> str:
    assert spec.messages[0]["role"] == "system"
    content = spec.messages[0]["content"]
    assert isinstance(content, str)
    return content
