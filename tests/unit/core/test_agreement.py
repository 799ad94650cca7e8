"""How much proposers agree (their answers normalized and counted, or compared as token sets), and
`moa.agreement`: how far the last layer's proposals agree, by early exit's measure, and who dissents."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moa_gateway.core.agreement import agreement, normalized
from moa_gateway.core.events import AgreementMeasured, CallStarted, LayerFinished
from moa_gateway.core.plan import EarlyExit, Policy, TopologyOverride, make_plan
from moa_gateway.core.policies import agreement_of
from moa_gateway.core.ports import RetryBudget, RunContext
from moa_gateway.core.reports import AgreementReport
from moa_gateway.core.runner import Runner, collect
from moa_gateway.core.types import Answer, CallSpec, RunInput, Usage
from moa_gateway.wire.chat import moa_body
from tests.support.core_fakes import QUESTION, FakeBackend, catalogue_with, events_of, plan_of, run_moa


def test_normalized_agreement_folds_case_space_and_punctuation() -> None:
    found = agreement(["Paris.", " paris", "PARIS!", "Lyon"])
    assert (found.share, found.representative) == (0.75, 0)
    assert agreement(["a b", "c d"]).share == 0.5


def test_similarity_agreement_counts_overlapping_token_sets() -> None:
    texts = ["the capital is paris", "the capital is paris indeed", "it is lyon"]
    assert agreement(texts, "similarity", 0.75).share == pytest.approx(2 / 3)
    assert agreement(texts, "similarity", 0.95).share == pytest.approx(1 / 3)


def proposals(*texts: str) -> list[tuple[str, Answer]]:
    models = ["alpha", "beta", "gamma", "delta", "epsilon"]
    return [(models[i], Answer(text, "stop", Usage())) for i, text in enumerate(texts)]


def test_a_majority_scores_its_share_and_names_the_proposer_apart() -> None:
    report = agreement_of(Policy(), proposals("Paris.", "paris", "Lyon"), layer=2)

    assert report == AgreementReport(0.667, "normalized", 2, 3, ["gamma"])


@pytest.mark.parametrize(
    ("texts", "score", "dissent"),
    [
        (("Paris", "PARIS!", " paris "), 1.0, []),  # unanimous: nobody dissents
        (("Paris", "Lyon", "Nice"), 0.333, []),  # every answer alone: no majority to dissent from
        (("Paris", "Lyon", "paris", "Nice"), 0.5, ["beta", "delta"]),
        (("Lyon", "Nice", "Nice", "Lyon"), 0.5, ["beta", "gamma"]),  # a tie goes to the earliest answer
    ],
)
def test_score_and_dissent(texts: tuple[str, ...], score: float, dissent: list[str]) -> None:
    report = agreement_of(Policy(), proposals(*texts), layer=1)

    assert report is not None
    assert (report.score, report.dissent, report.proposals) == (score, dissent, len(texts))


def test_the_measure_is_early_exits_own_when_the_pipeline_sets_one() -> None:
    texts = ("the capital is paris", "the capital is paris indeed", "it is lyon")
    loose = Policy(early_exit=EarlyExit(agreement=1.0, match="similarity", similarity=0.7))

    strict = agreement_of(Policy(), proposals(*texts), layer=1)
    similar = agreement_of(loose, proposals(*texts), layer=1)

    assert strict is not None and (strict.method, strict.score) == ("normalized", 0.333)
    assert similar is not None and (similar.method, similar.score, similar.dissent) == (
        "similarity",
        0.667,
        ["gamma"],
    )


def test_fewer_than_two_proposals_have_no_agreement() -> None:
    assert agreement_of(Policy(), proposals("Paris"), layer=1) is None
    assert agreement_of(Policy(), [], layer=1) is None


def reply_by_model(answers: dict[str, str]) -> FakeBackend:
    def reply(spec: CallSpec) -> str | None:
        return answers.get(spec.model) if spec.role == "proposer" else None

    return FakeBackend(reply=reply)


async def test_a_run_reports_the_last_layers_agreement_before_the_final_call() -> None:
    backend = reply_by_model({"alpha": "42", "beta": "42.", "gamma": "41"})

    events = await events_of(backend, plan_of("moa"))
    result = await run_moa(backend)

    measured = [i for i, e in enumerate(events) if isinstance(e, AgreementMeasured)]
    assert len(measured) == 1
    layers_done = [i for i, e in enumerate(events) if isinstance(e, LayerFinished)]
    final_start = next(
        i for i, e in enumerate(events) if isinstance(e, CallStarted) and e.role == "aggregator"
    )
    assert layers_done[-1] < measured[0] < final_start
    assert result.agreement == AgreementReport(0.667, "normalized", 2, 3, ["gamma"])
    assert moa_body(result, include_proposals=False)["agreement"] == {
        "score": 0.667,
        "method": "normalized",
        "layer": 2,
        "proposals": 3,
        "dissent": ["gamma"],
    }


async def test_an_early_exit_measures_the_layer_it_stopped_at() -> None:
    catalogue = catalogue_with(early_exit={"agreement": 1.0})
    backend = reply_by_model({"alpha": "42", "beta": "42", "gamma": "42"})

    events = Runner(backend, catalogue).events(
        make_plan(catalogue, "moa"), RunInput.plain(QUESTION), RunContext(RetryBudget(0))
    )
    result = await collect(events)

    assert result.early_exit is not None and result.early_exit.layer == 1
    assert result.agreement == AgreementReport(1.0, "normalized", 1, 3, [])


async def test_one_proposer_gives_a_null_agreement_and_a_model_none_at_all() -> None:
    catalogue = catalogue_with()
    lone = make_plan(catalogue, "moa", TopologyOverride(layers=[["alpha"]]))

    result = await collect(
        Runner(FakeBackend(), catalogue).events(lone, RunInput.plain(QUESTION), RunContext(RetryBudget(0)))
    )
    direct = await run_moa(FakeBackend(), model="alpha")

    assert result.agreement is None
    assert moa_body(result, include_proposals=False)["agreement"] is None
    assert "agreement" not in moa_body(direct, include_proposals=False)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_answers_fold_as_unicode_ones_do(text: str) -> None:
    """ASCII answers take a fast path (a byte table, not NFKC and the regex): same keys, so the same
    agreement, whatever punctuation, case, digits, underscores and control characters they hold."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    assert normalized(text) == " ".join(re.sub(r"[\W_]+", " ", folded).split())


def test_non_ascii_answers_still_fold_case_width_and_punctuation() -> None:
    assert (
        normalized("\uff30\uff21\uff32\uff29\uff33 \u2014 Stra\u00dfe!")
        == normalized("paris strasse")
        == "paris strasse"
    )
