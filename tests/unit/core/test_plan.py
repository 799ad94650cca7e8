"""Planning a request: the model or pipeline it names, and a request's topology override, checked before
anything runs."""

from __future__ import annotations

import pytest

from moa_gateway.config.topology import catalogue_of
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import TopologyOverride, make_plan
from tests.support.configs import simulated_config
from tests.support.core_fakes import plan_of


def test_unknown_model_is_model_not_found() -> None:
    with pytest.raises(Failure) as caught:
        plan_of("gpt-9")
    assert caught.value.kind == FailureKind.MODEL_NOT_FOUND


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
