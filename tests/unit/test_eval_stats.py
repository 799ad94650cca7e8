"""The eval's statistics: pairs to outcomes (inconsistent pairs are ties), rates, bootstrap intervals."""

from __future__ import annotations

import pytest

from moa_gateway.eval.stats import (
    Outcome,
    bootstrap_mean,
    bootstrap_rates,
    pair_outcome,
    percentile,
    rates,
    single_outcome,
)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (2, 1, ("win", False)),  # both prefer the candidate, however strongly
        (-1, -2, ("loss", False)),
        (0, 0, ("tie", False)),
        (1, -1, ("tie", True)),  # each order prefers whoever came first: position bias
        (2, 0, ("tie", True)),  # a win one way and a tie the other do not make a win
        (0, -2, ("tie", True)),
    ],
)
def test_a_pair_counts_only_when_both_orders_agree(
    first: int, second: int, expected: tuple[str, bool]
) -> None:
    assert pair_outcome(first, second) == expected


def test_single_mode_outcome_is_the_higher_rating() -> None:
    assert [single_outcome(8, 6), single_outcome(5, 5), single_outcome(3, 9)] == ["win", "tie", "loss"]


def test_rates_sum_to_one() -> None:
    shares = rates(["win", "win", "tie", "loss", "win", "tie", "loss"])

    assert shares == pytest.approx({"win": 3 / 7, "tie": 2 / 7, "loss": 2 / 7})
    assert sum(shares.values()) == pytest.approx(1.0)


def test_bootstrap_interval_brackets_the_rate_and_matches_the_normal_approximation() -> None:
    wins: list[Outcome] = ["win"] * 50
    losses: list[Outcome] = ["loss"] * 50
    outcomes = wins + losses

    interval = bootstrap_rates(outcomes)

    low, high = interval["win"]
    # Binomial standard error at p = 0.5, n = 100 is 0.05: the 95% interval is about 0.40 to 0.60.
    assert low == pytest.approx(0.40, abs=0.021)
    assert high == pytest.approx(0.60, abs=0.021)
    assert interval["tie"] == (0.0, 0.0)


def test_bootstrap_interval_narrows_with_more_items_and_is_repeatable() -> None:
    few: list[Outcome] = ["win", "loss", "tie", "win"] * 5
    many: list[Outcome] = few * 20

    width_few = bootstrap_rates(few)["win"][1] - bootstrap_rates(few)["win"][0]
    width_many = bootstrap_rates(many)["win"][1] - bootstrap_rates(many)["win"][0]

    assert width_many < width_few / 3  # about 1/sqrt(20) as wide
    assert bootstrap_rates(few, seed=7) == bootstrap_rates(few, seed=7)


def test_a_unanimous_result_has_a_zero_width_interval() -> None:
    assert bootstrap_rates(["win"] * 12)["win"] == (1.0, 1.0)
    assert bootstrap_rates([]) == {"win": (0.0, 0.0), "tie": (0.0, 0.0), "loss": (0.0, 0.0)}


def test_bootstrap_mean_and_percentiles() -> None:
    interval = bootstrap_mean([4.0, 6.0] * 30)
    assert interval is not None and interval[0] < 5.0 < interval[1]
    assert bootstrap_mean([]) is None
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 50) == pytest.approx(5.5)  # numpy.percentile's default (linear)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile([], 50) is None
