"""The pure parts of spending less: agreement, budget fitting, reference fitting, selection parsing."""

from __future__ import annotations

import pytest

from moa_gateway.core.agreement import agreement
from moa_gateway.core.budget import fit_budget
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.final.select import selected
from moa_gateway.core.final.sequential import rounds
from moa_gateway.core.fitting import fit_references
from moa_gateway.core.plan import Catalogue, LayerPlan, ModelEntry
from tests.support.asks import ASK_CAPITAL


def test_normalized_agreement_folds_case_space_and_punctuation() -> None:
    found = agreement(["Paris.", " paris", "PARIS!", "Lyon"])
    assert (found.share, found.representative) == (0.75, 0)
    assert agreement(["a b", "c d"]).share == 0.5


def test_similarity_agreement_counts_overlapping_token_sets() -> None:
    texts = ["the capital is paris", "the capital is paris indeed", "it is lyon"]
    assert agreement(texts, "similarity", 0.75).share == pytest.approx(2 / 3)
    assert agreement(texts, "similarity", 0.95).share == pytest.approx(1 / 3)


def catalogue() -> Catalogue:
    def priced(alias: str, usd: float) -> ModelEntry:
        return ModelEntry(alias, input_usd_per_mtok=usd, output_usd_per_mtok=usd)

    models = {m.alias: m for m in [priced("cheap", 1), priced("mid", 10), priced("pricey", 100)]}
    return Catalogue(models, {})


def test_no_budget_leaves_the_plan_as_it_is() -> None:
    layers = [LayerPlan(["cheap", "pricey"])]
    fit = fit_budget(catalogue(), layers, "cheap", ASK_CAPITAL, {}, {}, max_usd=None, proposer_cap=None)
    assert fit.layers == layers and fit.report is None


def test_the_dearest_proposer_goes_first_and_min_proposers_holds() -> None:
    layers = [LayerPlan(["cheap", "pricey", "mid"], min_proposers=2)]
    fit = fit_budget(catalogue(), layers, "cheap", ASK_CAPITAL, {}, {}, max_usd=0.02, proposer_cap=None)

    assert fit.layers[0].proposers == ["cheap", "mid"]
    assert fit.report is not None and fit.report.actions == ["dropped proposer pricey (layer 1)"]
    assert fit.report.estimated_usd <= 0.02


def test_the_clients_max_tokens_lowers_the_estimate() -> None:
    layers = [LayerPlan(["pricey"])]
    loose = fit_budget(catalogue(), layers, "cheap", ASK_CAPITAL, {}, {}, max_usd=1.0, proposer_cap=None)
    tight = fit_budget(
        catalogue(), layers, "cheap", ASK_CAPITAL, {"max_tokens": 10}, {}, max_usd=1.0, proposer_cap=None
    )
    assert loose.report is not None and tight.report is not None
    assert tight.report.estimated_usd < loose.report.estimated_usd / 10


def test_nothing_fits_is_budget_exceeded() -> None:
    with pytest.raises(Failure) as caught:
        fit_budget(
            catalogue(),
            [LayerPlan(["cheap"])],
            "pricey",
            ASK_CAPITAL,
            {},
            {},
            max_usd=1e-6,
            proposer_cap=None,
        )
    assert caught.value.kind == FailureKind.BUDGET_EXCEEDED


def test_references_are_cut_longest_first_to_a_common_length() -> None:
    short, long = "Paris.", "word " * 400
    fitted = fit_references([short, long], 120)

    assert fitted[0] == short
    assert "characters omitted" in fitted[1] and len(fitted[1]) < len(long) / 3
    assert fit_references([short, long], 10_000) == [short, long]


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
