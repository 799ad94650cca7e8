"""Constructors of the core's Failure for upstream calls, named for what went wrong."""

from __future__ import annotations

from moa_gateway.core.failures import Failure, FailureKind


def upstream_error(
    message: str,
    *,
    model: str,
    kind: FailureKind = FailureKind.BAD_RESPONSE,
    upstream_status: int | None = None,
    retry_after_s: float | None = None,
) -> Failure:
    return Failure(kind, message, model=model, upstream_status=upstream_status, retry_after_s=retry_after_s)


def timeout_error(message: str, *, model: str, upstream_status: int | None = None) -> Failure:
    return Failure(FailureKind.TIMEOUT, message, model=model, upstream_status=upstream_status)


def rejected_error(message: str, *, model: str, upstream_status: int | None = None) -> Failure:
    """The provider refused the request as invalid (400/413/422): the client should see why."""
    return Failure(FailureKind.REJECTED, message, model=model, upstream_status=upstream_status)
