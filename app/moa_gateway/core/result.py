"""The run's result assembled from its phases: the panel, the final outcome, the budget applied."""

from __future__ import annotations

from dataclasses import replace

from moa_gateway.core.chain import Slot
from moa_gateway.core.failures import Failure, FailureKind, combined_kind
from moa_gateway.core.final import FinalOutcome
from moa_gateway.core.plan import Plan
from moa_gateway.core.proposing import Panel
from moa_gateway.core.reports import BudgetReport, Degraded, GateReport, SavedBy
from moa_gateway.core.types import MoaResult


def assemble(
    plan: Plan,
    panel: Panel,
    outcome: FinalOutcome,
    waited_s: float,
    budget: BudgetReport | None,
    gate: GateReport | None = None,
) -> MoaResult:
    """The final call's answer (or the proposal chosen); if it gave none, the first proposal if the
    pipeline allows, else the chain's failure raised. Made in one construction: a replace() of a
    MoaResult costs about two."""
    records = panel.records + outcome.records
    degraded = None
    if outcome.chosen is not None:
        model, answer = panel.proposals[outcome.chosen]
    else:
        final = outcome.final
        assert final is not None
        if final.answer is not None:
            answer, model = final.answer, final.answered_by
        elif plan.best_proposal_fallback and panel.proposals:
            (model, answer), degraded = panel.proposals[0], Degraded.AGGREGATOR_FAILED
        else:
            raise _chain_failure(plan, final)
    if outcome.problem is not None:
        degraded = Degraded.SCHEMA_INVALID
    if budget is not None:  # what the run spent: MoaResult.cost_usd, before there is one
        budget = replace(budget, actual_usd=round(sum(call.cost_usd for call in records), 8))
    return MoaResult(
        plan.pipeline,
        answer,
        records,
        waited_s,
        panel.dropped,
        model,
        degraded,
        early_exit=panel.early_exit,
        budget=budget,
        calls_saved=_saved(panel),
        references_reused=panel.reused,
        agreement=panel.agreement,
        rankings=outcome.rankings,
        gate=gate,
    )


def _saved(panel: Panel) -> dict[SavedBy, int]:
    """The planned calls not made, by why: every proposer's when the turn's panel was reused; else those
    an early exit skipped."""
    sizes = [len(layer.proposers) for layer in panel.layers]
    if panel.reused:
        return {SavedBy.USER_TURN: sum(sizes)}
    early = 0 if panel.early_exit is None else panel.early_exit.calls_saved(sizes)
    return {SavedBy.EARLY_EXIT: early} if early else {}


def _chain_failure(plan: Plan, final: Slot) -> Failure:
    """The aggregator (or direct model) and every fallback failed."""
    if len(final.records) == 1 and final.last_failure is not None:
        return final.last_failure  # one model, one error: keep it as it was
    reasons = "; ".join(r.error or f"model {r.model}: failed" for r in final.records)
    what = "aggregator" if plan.pipeline else "model"
    message = f"{plan.model_id}: the {what} and its fallbacks all failed ({reasons})"
    kinds = {r.failure for r in final.records if r.failure is not None}
    return Failure(combined_kind(kinds), message, model=plan.final_chain[0])


def deadline_failure(plan: Plan) -> Failure:
    return Failure(
        FailureKind.PIPELINE_DEADLINE,
        f"{plan.model_id}: no answer within the pipeline deadline ({plan.deadline_s:g}s)",
        model=plan.final_chain[0],
    )
