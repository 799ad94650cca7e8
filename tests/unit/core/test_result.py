"""The run's result assembled from its phases: usage and cost summed over every call, and the failure of an
aggregator chain that gave no answer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.types import Usage
from tests.support.core_fakes import FakeBackend, down, plan_of, run_moa, run_plan


async def test_result_sums_usage_and_cost_over_every_call() -> None:
    result = await run_moa(FakeBackend())

    assert len(result.calls) == 7
    assert result.usage == Usage(70, 35)
    assert result.cost_usd == pytest.approx(3.5)
    assert [(c.layer, c.role) for c in result.calls][-1] == (3, "aggregator")


async def test_an_aggregator_failure_fails_the_request() -> None:
    with pytest.raises(Failure, match="omega"):
        await run_moa(FakeBackend(failing={"omega": down("omega")}))


async def test_when_the_aggregator_chain_fails_the_error_lists_every_attempt() -> None:
    plan = replace(plan_of("moa-1"), final_chain=["omega", "gamma"])

    with pytest.raises(Failure) as caught:
        await run_plan(FakeBackend(failing={"omega": down("omega"), "gamma": down("gamma")}), plan)

    assert caught.value.kind == FailureKind.UPSTREAM
    assert caught.value.message == (
        "moa-1: the aggregator and its fallbacks all failed (model omega: down; model gamma: down)"
    )
