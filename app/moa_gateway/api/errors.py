"""Exception handlers: a Failure, a body FastAPI could not validate, and HTTP errors, each as OpenAI's
error JSON with the status and retry advice of `app/moa_gateway/wire/errors.py`."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from moa_gateway.core.failures import Failure
from moa_gateway.wire.errors import error_body, failure_body, failure_status, retry_headers
from moa_gateway.wire.requests import validation_failure

logger = logging.getLogger(__name__)


def error_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def failure_response(request: Request, failure: Failure) -> Response:
    status = failure_status(failure)
    level = logging.WARNING if status >= 500 else logging.INFO
    logger.log(level, "%s %s -> %d: %s", request.method, request.url.path, status, failure.message)
    return error_response(status, failure_body(failure), retry_headers(status))


async def _failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Failure)
    return failure_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return failure_response(request, validation_failure(exc.errors()))


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
    app.add_exception_handler(Failure, _failure)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
