"""The final phase as parts: the registry the config reads its aggregation names from, each strategy
through the runner, a new strategy added with one registry line, how `select` reads the judge's pick and
how `sequential` windows the proposals."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from moa_gateway.config import ConfigError, parse_config
from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.events import Event
from moa_gateway.core.final import AGGREGATIONS, FINALIZERS, FinalOutcome, Finishing, Proposals
from moa_gateway.core.final.select import selected
from moa_gateway.core.final.sequential import rounds
from moa_gateway.core.plan import make_plan
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.runner import Runner, collect
from moa_gateway.core.types import RunInput
from tests.support.configs import topology
from tests.support.core_fakes import QUESTION, FakeBackend


def pipeline_with(**options: object) -> dict[str, object]:
    data = {"providers": {"sim": {"type": "simulated"}}, **topology("sim", layers=1)}
    data["pipelines"]["moa"].update(options)
    return data


def test_the_config_accepts_every_registered_aggregation_and_names_them_when_it_refuses() -> None:
    for name in AGGREGATIONS:
        parse_config(pipeline_with(aggregation=name), "test")
    with pytest.raises(ConfigError) as refused:
        parse_config(pipeline_with(aggregation="vote"), "test")
    assert "unknown aggregation 'vote'" in str(refused.value)
    assert all(name in str(refused.value) for name in AGGREGATIONS)


async def run_with(aggregation: str, backend: FakeBackend) -> str:
    catalogue = catalogue_of(parse_config(pipeline_with(aggregation=aggregation, window=2), "test"))
    runner = Runner(backend, catalogue)
    events = runner.events(make_plan(catalogue, "moa"), RunInput.plain(QUESTION), RunContext(RetryBudget(0)))
    return (await collect(events)).answered_by


async def test_sequential_aggregates_a_window_at_a_time_then_synthesizes() -> None:
    backend = FakeBackend()
    answered_by = await run_with("sequential", backend)
    # 3 proposers, window 2: one advisory round over 2 references, then the final over the carry + 1
    assert [call.role for call in backend.calls] == ["proposer"] * 3 + ["aggregator"] * 2
    assert answered_by == "omega"


async def first_proposal(
    finishing: Finishing, proposals: Proposals, outcome: FinalOutcome
) -> AsyncGenerator[Event, None]:
    """A strategy as a user would add one: the first proposal is the answer, no aggregator call."""
    for event in finishing.choose(proposals, 0, outcome):
        yield event


async def test_a_strategy_added_to_the_registry_is_accepted_by_the_config_and_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(FINALIZERS, "first", first_proposal)
    backend = FakeBackend()
    answered_by = await run_with("first", backend)
    assert answered_by == "alpha"
    assert [call.role for call in backend.calls] == ["proposer"] * 3  # no aggregator call


@pytest.mark.parametrize(
    ("text", "index"),
    [("[[2]]", 1), ("I pick [[ 3 ]] because", 2), ("1", 0), ("[[9]]", None), ("the second", None)],
)
def test_a_selection_is_read_from_double_brackets_or_a_bare_number(text: str, index: int | None) -> None:
    assert selected(text, 3) == index


def test_sequential_rounds_take_a_window_then_the_carry_plus_window_minus_one() -> None:
    assert rounds(5, 2) == [(0, 2), (2, 3), (3, 4), (4, 5)]
    assert rounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert rounds(2, 3) == [(0, 2)]
