"""The checks before any upstream call: the conversation fits the acting models, and the plan fits the
tighter of the request's and the pipeline's budgets, reported as a typed BudgetReport."""

from __future__ import annotations

from dataclasses import replace

import pytest

from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import EarlyExit, Plan, make_plan
from moa_gateway.core.preflight import preflight
from moa_gateway.core.reports import BudgetReport
from moa_gateway.core.types import RunInput
from tests.support.asks import ASK_CAPITAL
from tests.support.core_fakes import catalogue_with

CATALOGUE = catalogue_with(layers=2)  # priced models: alpha, beta, gamma; omega aggregates
ASKED = RunInput.plain(ASK_CAPITAL)


def with_budget(plan: Plan, max_cost_usd: float | None) -> Plan:
    return replace(plan, policy=replace(plan.policy, max_cost_usd=max_cost_usd))


def test_without_a_budget_the_plan_runs_as_planned_and_nothing_is_reported() -> None:
    plan = make_plan(CATALOGUE, "moa")

    checked = preflight(CATALOGUE, plan, ASKED)

    assert checked.layers == plan.layers and checked.proposer_cap is None and checked.budget is None


def test_a_budget_the_plan_fits_is_reported_with_its_estimate_and_nothing_cut() -> None:
    plan = with_budget(make_plan(CATALOGUE, "moa"), 1.0)

    checked = preflight(CATALOGUE, plan, ASKED)

    assert checked.layers == plan.layers
    assert checked.budget is not None and 0 < checked.budget.estimated_usd < 1.0
    assert checked.budget == BudgetReport(1.0, checked.budget.estimated_usd, [])


def test_a_tight_budget_cuts_the_plan_and_says_what_it_cut() -> None:
    plan = make_plan(CATALOGUE, "moa")
    full = preflight(CATALOGUE, with_budget(plan, 1.0), ASKED).budget
    assert full is not None
    tight = full.estimated_usd * 0.6

    checked = preflight(CATALOGUE, with_budget(plan, tight), ASKED)

    report = checked.budget
    assert report is not None and report.max_usd == tight and report.estimated_usd <= tight
    dropped = [action for action in report.actions if action.startswith("dropped proposer ")]
    assert dropped, report.actions
    planned = sum(len(layer.proposers) for layer in plan.layers)
    assert sum(len(layer.proposers) for layer in checked.layers) == planned - len(dropped)


@pytest.mark.parametrize(("request_usd", "pipeline_usd"), [(0.5, 2.0), (2.0, 0.5)])
def test_the_tighter_of_the_requests_and_the_pipelines_budgets_applies(
    request_usd: float, pipeline_usd: float
) -> None:
    plan = with_budget(make_plan(CATALOGUE, "moa"), pipeline_usd)

    checked = preflight(CATALOGUE, plan, replace(ASKED, max_cost_usd=request_usd))

    assert checked.budget is not None and checked.budget.max_usd == 0.5


def test_a_budget_nothing_fits_fails_before_any_call() -> None:
    with pytest.raises(Failure) as caught:
        preflight(CATALOGUE, with_budget(make_plan(CATALOGUE, "moa"), 1e-9), ASKED)

    assert caught.value.kind == FailureKind.BUDGET_EXCEEDED and caught.value.param == "moa.max_cost_usd"


def test_a_conversation_over_the_aggregators_context_window_fails_before_any_call() -> None:
    catalogue = replace(
        CATALOGUE, models={**CATALOGUE.models, "omega": replace(CATALOGUE.models["omega"], context_window=5)}
    )

    with pytest.raises(Failure) as caught:
        preflight(catalogue, make_plan(catalogue, "moa"), ASKED)

    assert caught.value.kind == FailureKind.CONTEXT_LENGTH_EXCEEDED and caught.value.param == "messages"


def test_the_escalation_model_must_fit_the_conversation_too() -> None:
    models = {**CATALOGUE.models, "alpha": replace(CATALOGUE.models["alpha"], context_window=5)}
    catalogue = replace(CATALOGUE, models=models)
    plan = make_plan(catalogue, "moa")
    escalating = replace(plan, policy=replace(plan.policy, early_exit=EarlyExit(escalate_to="alpha")))

    preflight(catalogue, plan, ASKED)  # alpha only proposes: its references are fitted, not refused
    with pytest.raises(Failure) as caught:
        preflight(catalogue, escalating, ASKED)

    assert caught.value.kind == FailureKind.CONTEXT_LENGTH_EXCEEDED
    assert "maximum context length is 5 tokens" in caught.value.message


def test_a_forced_tool_call_under_tools_mode_bypass_runs_the_aggregator_alone() -> None:
    plan = replace(make_plan(CATALOGUE, "moa"), tools_mode="bypass")

    forced = preflight(CATALOGUE, plan, replace(ASKED, tools_forced=True))
    advised = preflight(CATALOGUE, replace(plan, tools_mode="advise"), replace(ASKED, tools_forced=True))

    assert forced.layers == [] and advised.layers == plan.layers
