"""The retry policy: what is retried, how long it waits, and the per-request budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from moa_gateway.config import RetryPolicy
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import RetryBudget
from moa_gateway.upstream.failures import rejected_error, timeout_error, upstream_error
from moa_gateway.upstream.retry import is_retryable, parse_retry_after, retry_delay

POLICY = RetryPolicy(max_attempts=5, base_delay_s=0.5, max_delay_s=3.0, retry_after_cap_s=2.0)


def status(code: int, retry_after_s: float | None = None) -> Failure:
    return upstream_error("x", model="m", upstream_status=code, retry_after_s=retry_after_s)


@pytest.mark.parametrize("code", [408, 409, 429, 500, 502, 503, 504])
def test_try_again_statuses_are_retried(code: int) -> None:
    assert is_retryable(status(code))


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422])
def test_statuses_that_would_fail_again_are_not(code: int) -> None:
    assert not is_retryable(status(code))


def test_connection_errors_are_retried_but_our_own_deadlines_and_rejections_are_not() -> None:
    assert is_retryable(upstream_error("refused", model="m", kind=FailureKind.CONNECTION))
    assert not is_retryable(timeout_error("slow", model="m"))
    assert not is_retryable(rejected_error("bad", model="m", upstream_status=400))
    assert not is_retryable(upstream_error("not JSON", model="m"))


def test_delay_doubles_per_attempt_up_to_the_cap() -> None:
    delays = [
        retry_delay(POLICY, status(503), attempt, budget=None, jitter=lambda: 1.0) for attempt in range(4)
    ]

    assert delays == [0.5, 1.0, 2.0, 3.0]


def test_full_jitter_scales_the_delay() -> None:
    assert retry_delay(POLICY, status(503), 1, budget=None, jitter=lambda: 0.5) == 0.5


def test_no_retry_after_the_last_attempt() -> None:
    assert retry_delay(POLICY, status(503), 3, budget=None) is not None
    assert retry_delay(POLICY, status(503), 4, budget=None) is None


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    assert retry_delay(POLICY, status(429, retry_after_s=1.5), 0, budget=None) == 1.5
    assert retry_delay(POLICY, status(429, retry_after_s=60), 0, budget=None) == 2.0


def test_the_request_budget_is_shared_and_runs_out() -> None:
    budget = RetryBudget(2)

    first = retry_delay(POLICY, status(503), 0, budget=budget)
    second = retry_delay(
        POLICY, upstream_error("x", model="other", kind=FailureKind.CONNECTION), 0, budget=budget
    )
    third = retry_delay(POLICY, status(503), 1, budget=budget)

    assert first is not None and second is not None
    assert third is None and budget.left == 0


def test_a_non_retryable_error_spends_no_budget() -> None:
    budget = RetryBudget(1)

    assert retry_delay(POLICY, status(400), 0, budget=budget) is None
    assert budget.left == 1


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)

    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(in_ten) == pytest.approx(10, abs=1.5)
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
