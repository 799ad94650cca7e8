"""The gateway's exception tree and its mapping to OpenAI's error JSON.

GatewayError                 any error a client sees; carries status, type, code, param
 ├── InvalidRequestError     400 invalid_request_error (bad body, unsupported option)
 ├── ModelNotFoundError      404 model_not_found
 └── UpstreamError           502 upstream_error: a provider failed (names the model alias, never a key)
      ├── UpstreamTimeoutError   504 upstream_timeout
      └── UpstreamRejectedError  400: the provider refused the request as invalid (direct calls)
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        return error_body(self.message, self.error_type, param=self.param, code=self.code)


class InvalidRequestError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFoundError(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class UpstreamError(GatewayError):
    """A provider call failed. `model` is the config alias; `upstream_status` the provider's status.

    `kind` labels the failure in metrics: connection, timeout, rate_limited, auth, rejected,
    server_error, status (another 4xx), bad_response (not the OpenAI shape, malformed HTTP, over a size
    limit), mid_stream (an error frame, or a stream cut before its end).
    """

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    default_kind = "bad_response"

    def __init__(
        self,
        message: str,
        *,
        model: str,
        upstream_status: int | None = None,
        kind: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.upstream_status = upstream_status
        self.kind = kind or self.default_kind
        self.retry_after_s = retry_after_s


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    default_kind = "timeout"


class UpstreamRejectedError(UpstreamError):
    """The provider answered 400/404/422: the request itself is at fault, so the client should know."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "upstream_rejected"
    default_kind = "rejected"


def error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def quoted(value: str, limit: int = 200) -> str:
    """A client-supplied value for an error message: repr-quoted, cut so a huge value is not echoed."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


# A fragment of a secret shorter than this is not told apart from ordinary text.
_MIN_FRAGMENT = 4


def redact(text: str, secrets: list[str], limit: int | None = None) -> str:
    """`text` with every secret replaced, then cut to `limit` characters.

    Providers echo (part of) a key in their errors, and may cut their own text mid-key: a secret's
    head left at the end of `text`, or its tail at the start, is replaced too. Scrubbing comes before
    the cut, so no cut point can leave part of a key behind.
    """
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
        shortest = min(_MIN_FRAGMENT, len(secret))
        for size in range(len(secret) - 1, shortest - 1, -1):
            if text.endswith(secret[:size]):
                text = text[:-size] + "[redacted]"
                break
        for size in range(len(secret) - 1, shortest - 1, -1):
            if text.startswith(secret[-size:]):
                text = "[redacted]" + text[size:]
                break
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text
