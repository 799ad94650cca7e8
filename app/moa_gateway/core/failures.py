"""One enumeration of the ways a request or an upstream call fails, and the one exception carrying it.

The HTTP edge maps a kind to a status, an error type, a code and retry headers (`app/moa_gateway/wire/errors.py`);
metrics label failed calls with the kind's value.
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    # the client's request
    INVALID_REQUEST = "invalid_request"
    MODEL_NOT_FOUND = "model_not_found"
    NOT_FOUND = "not_found"  # a stored object the request names (a response id) does not exist
    # one upstream call
    CONNECTION = "connection"  # refused, reset, unreachable
    TIMEOUT = "timeout"  # a provider deadline passed, or it answered 408/504/524
    RATE_LIMITED = "rate_limited"  # 429
    AUTH = "auth"  # 401/403: the gateway's credentials
    REJECTED = "rejected"  # 400/413/422: the request was at fault
    SERVER_ERROR = "server_error"  # 5xx
    STATUS = "status"  # another 4xx
    BAD_RESPONSE = "bad_response"  # not OpenAI's shape, or over a size limit
    MID_STREAM = "mid_stream"  # an error frame, or a stream cut short
    # decided by the run
    CANCELLED = "cancelled"
    CIRCUIT_OPEN = "circuit_open"
    LAYER_DEADLINE = "layer_deadline"
    PIPELINE_DEADLINE = "pipeline_deadline"
    CONTEXT_OVERFLOW = "context_overflow"  # a model's input would not fit its context window: not called
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"  # the conversation alone is over the acting model's
    BUDGET_EXCEEDED = "budget_exceeded"  # not even the aggregator alone fits the request's cost budget
    UPSTREAM = "upstream"  # several calls failed in different ways


TIMEOUT_KINDS = frozenset({FailureKind.TIMEOUT, FailureKind.LAYER_DEADLINE, FailureKind.PIPELINE_DEADLINE})


class Failure(Exception):
    """A request or call failed. `model` is the config alias involved (for upstream failures)."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        model: str | None = None,
        param: str | None = None,
        code: str | None = None,
        upstream_status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.model = model
        self.param = param
        self.code = code  # a specific code for the client, where the kind's own is too coarse
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s


def combined_kind(kinds: set[FailureKind]) -> FailureKind:
    """The kind of a failure made of several: all timeouts stay a timeout, all rejections a rejection."""
    if kinds and kinds <= TIMEOUT_KINDS:
        return FailureKind.TIMEOUT
    if kinds == {FailureKind.REJECTED}:
        return FailureKind.REJECTED
    return FailureKind.UPSTREAM
