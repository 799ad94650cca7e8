"""What a run reports about its policies, as typed values: the calls an early exit saved."""

from __future__ import annotations

import pytest

from moa_gateway.core.policies import ESCALATED
from moa_gateway.core.reports import EarlyExitReport, Skipped

LAYER_SIZES = [2, 4, 3]  # the proposers of each layer of the plan


@pytest.mark.parametrize(
    ("report", "saved"),
    [
        (EarlyExitReport(1, 1.0, Skipped.AGGREGATOR), 4 + 3 + 1),
        (EarlyExitReport(1, 1.0, Skipped.LAYERS), 4 + 3),
        (EarlyExitReport(2, 0.75, Skipped.AGGREGATOR), 3 + 1),
        (EarlyExitReport(2, 0.75, Skipped.LAYERS), 3),
        (EarlyExitReport(3, 1.0, None), 0),
        (ESCALATED, 0),
    ],
    ids=["aggregator-after-1", "layers-after-1", "aggregator-after-2", "layers-after-2", "last", "escalated"],
)
def test_an_early_exit_saves_the_proposers_of_later_layers_and_the_aggregator_it_skipped(
    report: EarlyExitReport, saved: int
) -> None:
    assert report.calls_saved(LAYER_SIZES) == saved
