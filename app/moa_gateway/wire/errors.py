"""Failures on the wire: the one mapping of a failure kind to an HTTP status, OpenAI's error type and
code, and retry advice; and the error body shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moa_gateway.core.failures import Failure, FailureKind


@dataclass(frozen=True)
class ErrorShape:
    status: int
    type: str
    code: str | None


_INVALID = ErrorShape(400, "invalid_request_error", None)
_UPSTREAM = ErrorShape(502, "upstream_error", "upstream_error")
_TIMEOUT = ErrorShape(504, "upstream_error", "upstream_timeout")
_SHAPES: dict[FailureKind, ErrorShape] = {
    FailureKind.INVALID_REQUEST: _INVALID,
    FailureKind.MODEL_NOT_FOUND: ErrorShape(404, "invalid_request_error", "model_not_found"),
    FailureKind.NOT_FOUND: ErrorShape(404, "invalid_request_error", None),
    FailureKind.REJECTED: ErrorShape(400, "invalid_request_error", "upstream_rejected"),
    FailureKind.TIMEOUT: _TIMEOUT,
    FailureKind.LAYER_DEADLINE: _TIMEOUT,
    FailureKind.PIPELINE_DEADLINE: _TIMEOUT,
    FailureKind.CONTEXT_LENGTH_EXCEEDED: ErrorShape(400, "invalid_request_error", "context_length_exceeded"),
    FailureKind.BUDGET_EXCEEDED: ErrorShape(400, "invalid_request_error", "budget_exceeded"),
}

# The `error_code` of a failed call in `moa.calls`: the client's code for its kind, or what the run did.
_CALL_CODES: dict[FailureKind, str] = {
    FailureKind.CANCELLED: "cancelled",
    FailureKind.CIRCUIT_OPEN: "circuit_open",
    FailureKind.LAYER_DEADLINE: "layer_deadline",
    FailureKind.PIPELINE_DEADLINE: "pipeline_deadline",
    FailureKind.CONTEXT_OVERFLOW: "context_overflow",
}

# The OpenAI SDK retries 408, 409, 429 and 5xx by default. Our 5xx come after our own retries, and a
# client retry would re-run a whole fan-out for nothing: tell the SDK so. 429 and 503 may help.
RETRYABLE_STATUSES = (429, 503)


def shape_of(kind: FailureKind) -> ErrorShape:
    return _SHAPES.get(kind, _UPSTREAM)


def call_error_code(kind: FailureKind) -> str | None:
    return _CALL_CODES.get(kind) or shape_of(kind).code


def retry_headers(status: int) -> dict[str, str]:
    """`x-should-retry: false` for every error status but those where a retry can help."""
    return {} if status in RETRYABLE_STATUSES else {"x-should-retry": "false"}


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def failure_body(failure: Failure) -> dict[str, Any]:
    shape = shape_of(failure.kind)
    return error_body(failure.message, shape.type, param=failure.param, code=failure.code or shape.code)


def failure_status(failure: Failure) -> int:
    return shape_of(failure.kind).status
