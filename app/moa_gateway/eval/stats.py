"""The statistics of an eval: a pair of judge games to one outcome, rates, percentile bootstrap 95%
intervals, and percentiles. Plain Python: datasets are hundreds of items, not millions."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Literal

Outcome = Literal["win", "tie", "loss"]
OUTCOMES: tuple[Outcome, ...] = ("win", "tie", "loss")
RESAMPLES = 2000


def pair_outcome(first: int, second: int) -> tuple[Outcome, bool]:
    """The candidate's outcome from its scores (-2..2) in the two games of a pair (positions swapped),
    and whether the games disagreed. Both must point the same way (or both tie); a pair that disagrees,
    which is often position bias, counts as a tie (as MT-Bench does)."""
    sign_first, sign_second = _sign(first), _sign(second)
    if sign_first != sign_second:
        return "tie", True
    return ("win" if sign_first > 0 else "loss" if sign_first < 0 else "tie"), False


def single_outcome(candidate: float, baseline: float) -> Outcome:
    """Single-answer grading: the higher rating wins."""
    return "win" if candidate > baseline else "loss" if candidate < baseline else "tie"


def rates(outcomes: Sequence[Outcome]) -> dict[Outcome, float]:
    """Share of each outcome; they sum to 1 (all 0 when there are none)."""
    n = len(outcomes)
    return {o: (sum(1 for x in outcomes if x == o) / n if n else 0.0) for o in OUTCOMES}


def bootstrap_rates(
    outcomes: Sequence[Outcome], resamples: int = RESAMPLES, seed: int = 0
) -> dict[Outcome, tuple[float, float]]:
    """Percentile bootstrap 95% interval of each rate: the items resampled with replacement."""
    if not outcomes:
        return dict.fromkeys(OUTCOMES, (0.0, 0.0))
    rng = random.Random(seed)
    n = len(outcomes)
    draws: dict[Outcome, list[float]] = {o: [] for o in OUTCOMES}
    for _ in range(resamples):
        sample = rng.choices(outcomes, k=n)
        for o in OUTCOMES:
            draws[o].append(sample.count(o) / n)
    return {o: _interval(draws[o]) for o in OUTCOMES}


def bootstrap_mean(
    values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of the mean, or None without values."""
    return bootstrap(values, _mean, resamples, seed)


def bootstrap(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float],
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float] | None:
    if not values:
        return None
    rng = random.Random(seed)
    return _interval([statistic(rng.choices(values, k=len(values))) for _ in range(resamples)])


def mean(values: Sequence[float]) -> float | None:
    return _mean(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), interpolated linearly between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _interval(draws: list[float]) -> tuple[float, float]:
    low, high = percentile(draws, 2.5), percentile(draws, 97.5)
    assert low is not None and high is not None
    return low, high


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)
