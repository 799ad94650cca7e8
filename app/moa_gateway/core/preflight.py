"""Checks made before any upstream call: the conversation fits the models that may answer, and the plan
fits the request's budget (cut down to fit if need be)."""

from __future__ import annotations

from dataclasses import dataclass

from moa_gateway.core.budget import fit_budget
from moa_gateway.core.fitting import check_conversation
from moa_gateway.core.plan import Catalogue, LayerPlan, Plan
from moa_gateway.core.reports import BudgetReport
from moa_gateway.core.types import RunInput


@dataclass(frozen=True)
class Preflight:
    """The layers the run will make, the proposers' output cap, and the budget report if one applied."""

    layers: list[LayerPlan]
    proposer_cap: int | None
    budget: BudgetReport | None


def preflight(catalogue: Catalogue, plan: Plan, run: RunInput) -> Preflight:
    """Raises Failure (400 context too long, 400 budget exceeded) before anything is spent."""
    policy = plan.policy
    # The models that may act: the aggregator, and the one escalated to when proposers disagree.
    escalate_to = policy.early_exit.escalate_to if policy.early_exit else None
    acting = [catalogue.models[a] for a in (plan.final_chain[0], escalate_to) if a is not None]
    for entry in acting:
        check_conversation(entry, run.messages, run.params)
    # A forced tool call with `tools_mode: bypass`: the aggregator alone answers.
    layers = [] if run.tools_forced and plan.tools_mode == "bypass" else plan.layers
    dearest = max(acting, key=lambda e: e.input_usd_per_mtok + e.output_usd_per_mtok)
    fit = fit_budget(
        catalogue,
        layers,
        dearest.alias,
        run.messages,
        run.proposer_params,
        run.params,
        max_usd=_lowest(run.max_cost_usd, policy.max_cost_usd),
        proposer_cap=policy.reference_max_tokens,
    )
    return Preflight(fit.layers, fit.proposer_cap, fit.report)


def _lowest(*limits: float | None) -> float | None:
    given = [limit for limit in limits if limit is not None]
    return min(given) if given else None
