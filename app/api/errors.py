"""Every error leaves as OpenAI's error JSON: handlers for our tree and HTTP errors, and a boundary
middleware for the unexpected, so that even a 500 carries `x-request-id` and `x-should-retry`."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import GatewayError, InvalidRequestError, error_body

logger = logging.getLogger(__name__)


def error_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def validation_error(exc: RequestValidationError | Exception) -> InvalidRequestError:
    """The first problem of a pydantic validation, as a 400 with `param` set to its path."""
    errors = exc.errors() if hasattr(exc, "errors") else []
    if not errors:
        return InvalidRequestError("Invalid request body")
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part != "body"]
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return InvalidRequestError(f"{param}: {message}" if param else message, param=param)


# The OpenAI SDK retries 408, 409, 429 and 5xx by default. Our 5xx come after our own retries, and a
# client retry would re-run a whole fan-out for nothing: tell the SDK so. 429 and 503 may help.
NO_RETRY = {"x-should-retry": "false"}
RETRYABLE_STATUSES = (429, 503)


def retry_headers(status: int) -> dict[str, str]:
    """`x-should-retry: false` for every error status but those where a retry can help."""
    return {} if status in RETRYABLE_STATUSES else dict(NO_RETRY)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    if exc.status_code >= 500:
        logger.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status_code, exc.message)
    else:
        logger.info("%s %s -> %d: %s", request.method, request.url.path, exc.status_code, exc.message)
    return error_response(exc.status_code, exc.to_body(), retry_headers(exc.status_code))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await _gateway_error(request, validation_error(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message, code = f"Unknown request URL: {request.method} {request.url.path}", "unknown_url"
    elif exc.status_code == 405:
        message, code = f"Method {request.method} is not allowed on {request.url.path}", "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    headers = {**retry_headers(exc.status_code), **(exc.headers or {})}
    return error_response(exc.status_code, error_body(message, "invalid_request_error", code=code), headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


class ErrorBoundaryMiddleware:
    """Turns an unexpected exception into a 500 in OpenAI's shape, inside the request-id middleware.

    Starlette would send a handler for `Exception` from its outermost middleware, past ours: that 500
    had no `x-request-id` and no `x-should-retry`, so SDKs re-ran the whole fan-out twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception:
            logger.exception("%s %s -> 500", scope.get("method", ""), scope.get("path", ""))
            if started:
                raise  # part of a response went out: only closing the connection tells the client
            body = orjson.dumps(error_body("The gateway failed unexpectedly", "server_error"))
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-should-retry", b"false"),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": body})
