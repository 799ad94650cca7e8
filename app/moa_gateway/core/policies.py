"""Layer policies decided between layers: early exit when proposers agree, escalation when they do not."""

from __future__ import annotations

from dataclasses import dataclass

from moa_gateway.core.agreement import agreement
from moa_gateway.core.plan import EarlyExit, Policy
from moa_gateway.core.prompts import final_answer
from moa_gateway.core.reports import AgreementReport, EarlyExitReport, Skipped
from moa_gateway.core.types import Answer, RunInput


@dataclass(frozen=True)
class EarlyExitDecision:
    """An early exit, and the proposal it takes as the answer when it skips the aggregator."""

    report: EarlyExitReport
    answer_index: int | None = None


def proposal_may_answer(run: RunInput) -> bool:
    """Can a proposal be the answer as it is? Not when the client offered tools or asked for a schema or
    several choices: proposers were never given those, so only the aggregator can honour them."""
    params = run.params
    asked = params.get("tools") or params.get("response_format") or (params.get("n") or 1) > 1
    return not asked and run.check_answer is None


def early_exit_after(
    early_exit: EarlyExit,
    proposals: list[tuple[str, Answer]],
    number: int,
    layer_count: int,
    may_answer: bool,
) -> EarlyExitDecision | None:
    """The early exit a layer's agreeing proposals call for, if they agree enough: without
    `escalate_to` (and when a proposal may be the answer), the agreed proposal is the answer; else only
    the remaining layers are skipped and the pipeline's own aggregator answers."""
    if len(proposals) < 2:
        return None
    found = agreement([final_answer(a.text) for _, a in proposals], early_exit.match, early_exit.similarity)
    if found.share + 1e-9 < early_exit.agreement:
        return None
    if early_exit.escalate_to is None and may_answer:
        report = EarlyExitReport(number, round(found.share, 3), Skipped.AGGREGATOR)
        return EarlyExitDecision(report, found.representative)
    skipped = Skipped.LAYERS if number < layer_count else None
    return EarlyExitDecision(EarlyExitReport(number, round(found.share, 3), skipped))


ESCALATED = EarlyExitReport(layer=None, agreement=None, skipped=None, escalated=True)


def agreement_of(policy: Policy, proposals: list[tuple[str, Answer]], layer: int) -> AgreementReport | None:
    """How far a layer's proposals agree, by the pipeline's early-exit measure (its `match` and
    `similarity`; the defaults without early exit). None with fewer than two: there is nothing to agree."""
    if len(proposals) < 2:
        return None
    measure = policy.early_exit or EarlyExit()
    found = agreement([final_answer(a.text) for _, a in proposals], measure.match, measure.similarity)
    dissent = [proposals[i][0] for i in found.dissent(len(proposals))]
    return AgreementReport(round(found.share, 3), measure.match, layer, len(proposals), dissent)
