"""When and how long to wait before retrying an upstream call, within the run's retry budget.

Retried: connection failures and the statuses a provider uses for "try again" (408, 409, 429, 5xx).
Never: other 4xx (the same request fails the same way), our own deadlines, errors after a stream began.
Delays grow exponentially with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"),
except that a provider's Retry-After, capped, is honoured.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from time import time

from moa_gateway.config import RetryPolicy
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import RetryBudget

_RETRY_STATUSES = {408, 409, 429}


def is_retryable(exc: Failure) -> bool:
    status = exc.upstream_status
    return exc.kind == FailureKind.CONNECTION or (
        status is not None and (status in _RETRY_STATUSES or status >= 500)
    )


def retry_delay(
    policy: RetryPolicy,
    exc: Failure,
    attempt: int,
    *,
    budget: RetryBudget | None,
    jitter: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1` (0-based), or None when the call must not be retried."""
    if attempt + 1 >= policy.max_attempts or not is_retryable(exc):
        return None
    if budget is not None and not budget.take():  # None: no budget (the policy alone)
        return None
    if exc.retry_after_s is not None:
        return min(exc.retry_after_s, policy.retry_after_cap_s)
    return min(policy.max_delay_s, policy.base_delay_s * 2.0**attempt) * jitter()


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, float(parsedate_to_datetime(value).timestamp()) - time())
    except (TypeError, ValueError):
        return None
