"""The early-exit policy decided after each layer: agreeing proposals answer themselves (the aggregator
skipped) when a proposal may be the answer, else only the remaining layers are skipped."""

from __future__ import annotations

from dataclasses import replace

from moa_gateway.core.plan import EarlyExit
from moa_gateway.core.policies import EarlyExitDecision, early_exit_after, proposal_may_answer
from moa_gateway.core.reports import EarlyExitReport, Skipped
from moa_gateway.core.types import Answer, RunInput, Usage
from tests.support.asks import ASK_CAPITAL


def proposals(*texts: str) -> list[tuple[str, Answer]]:
    return [(f"p{i}", Answer(text, "stop", Usage())) for i, text in enumerate(texts)]


def test_agreeing_proposals_skip_the_aggregator_and_the_first_of_them_answers() -> None:
    decision = early_exit_after(EarlyExit(), proposals("Paris.", " paris", "PARIS!"), 1, 2, True)

    assert decision == EarlyExitDecision(EarlyExitReport(1, 1.0, Skipped.AGGREGATOR), answer_index=0)


def test_the_agreed_answer_is_a_proposal_of_the_majority_and_its_share_is_rounded() -> None:
    decision = early_exit_after(EarlyExit(agreement=0.6), proposals("Lyon", "Paris.", "paris"), 1, 1, True)

    assert decision == EarlyExitDecision(EarlyExitReport(1, 0.667, Skipped.AGGREGATOR), answer_index=1)


def test_too_little_agreement_or_a_single_proposal_is_no_exit() -> None:
    assert (
        early_exit_after(EarlyExit(agreement=0.7), proposals("Lyon", "Paris.", "paris"), 1, 2, True) is None
    )
    assert early_exit_after(EarlyExit(agreement=0.5), proposals("Paris."), 1, 2, True) is None


def test_reasoning_blocks_are_left_out_when_proposals_are_compared() -> None:
    agreed = proposals("<think>Lyon? no.</think>Paris.", "<think>France...</think> paris")

    decision = early_exit_after(EarlyExit(), agreed, 1, 1, True)

    assert decision is not None and decision.report.agreement == 1.0


def test_when_no_proposal_may_answer_only_the_remaining_layers_are_skipped() -> None:
    agreed = proposals("Paris.", "paris")

    after_first = early_exit_after(EarlyExit(), agreed, 1, 3, False)
    after_last = early_exit_after(EarlyExit(), agreed, 3, 3, False)

    assert after_first == EarlyExitDecision(EarlyExitReport(1, 1.0, Skipped.LAYERS))
    assert after_last == EarlyExitDecision(EarlyExitReport(3, 1.0, None)), "no layer is left to skip"


def test_with_an_escalation_model_an_agreement_goes_to_the_pipelines_own_aggregator() -> None:
    decision = early_exit_after(EarlyExit(escalate_to="strong"), proposals("Paris.", "paris"), 1, 2, True)

    assert decision == EarlyExitDecision(EarlyExitReport(1, 1.0, Skipped.LAYERS), answer_index=None)


async def fits(text: str) -> str | None:
    return None


def test_a_proposal_may_answer_only_what_proposers_were_asked() -> None:
    plain = RunInput.plain(ASK_CAPITAL, {"temperature": 0.2, "n": 1})
    tools = {"tools": [{"type": "function", "function": {"name": "f"}}]}
    schema = {"response_format": {"type": "json_object"}}

    assert proposal_may_answer(plain)
    assert not proposal_may_answer(RunInput.plain(ASK_CAPITAL, tools))
    assert not proposal_may_answer(RunInput.plain(ASK_CAPITAL, schema))
    assert not proposal_may_answer(RunInput.plain(ASK_CAPITAL, {"n": 2}))
    assert not proposal_may_answer(replace(plain, check_answer=fits)), "an answer to check against a schema"
