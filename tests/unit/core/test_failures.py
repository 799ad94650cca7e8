"""The kind of a failure made of several calls' failures (a layer's quorum, an aggregator chain)."""

from __future__ import annotations

import pytest

from moa_gateway.core.failures import FailureKind, combined_kind

K = FailureKind


@pytest.mark.parametrize(
    ("kinds", "combined"),
    [
        ({K.TIMEOUT, K.LAYER_DEADLINE, K.PIPELINE_DEADLINE}, K.TIMEOUT),
        ({K.LAYER_DEADLINE}, K.TIMEOUT),
        ({K.REJECTED}, K.REJECTED),
        ({K.REJECTED, K.TIMEOUT}, K.UPSTREAM),
        ({K.SERVER_ERROR}, K.UPSTREAM),
        (set(), K.UPSTREAM),
    ],
    ids=["all-timeouts", "layer-deadline", "all-rejected", "mixed", "server-error", "none-known"],
)
def test_all_timeouts_stay_a_timeout_all_rejections_a_rejection_the_rest_is_upstream(
    kinds: set[FailureKind], combined: FailureKind
) -> None:
    assert combined_kind(kinds) == combined
