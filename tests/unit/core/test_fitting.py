"""Fitting references to a reader's context: the longest cut first, to a common length."""

from __future__ import annotations

from moa_gateway.core.fitting import fit_references


def test_references_are_cut_longest_first_to_a_common_length() -> None:
    short, long = "Paris.", "word " * 400
    fitted = fit_references([short, long], 120)

    assert fitted[0] == short
    assert "characters omitted" in fitted[1] and len(fitted[1]) < len(long) / 3
    assert fit_references([short, long], 10_000) == [short, long]
