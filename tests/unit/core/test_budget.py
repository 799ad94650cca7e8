"""Fitting a plan to a budget: the dearest proposers dropped first while the quorum holds, the client's
max_tokens in the estimate, a 400 when nothing fits."""

from __future__ import annotations

import pytest

from moa_gateway.core.budget import fit_budget
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.plan import Catalogue, LayerPlan, ModelEntry
from tests.support.asks import ASK_CAPITAL


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
