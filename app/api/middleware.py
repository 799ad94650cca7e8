"""Pure-ASGI middleware (no `@app.middleware("http")`: that buffers streams and hides disconnects)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import fields_text
from app.metrics import UNKNOWN_MODEL, Metrics
from app.moa.types import MoaResult
from app.request_context import request_id_var

logger = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Echo the client's `x-request-id` (if it is a sane token) or make one; expose it to logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class ChatMetricsMiddleware:
    """Counts, times and logs chat completion requests to their last byte, streams included.

    The route leaves what it learned in the request state: `moa_model` (a config name), `moa_stream`,
    `moa_result`, and `moa_status` when the status sent is not the one to record: a stream that failed
    after its 200, a client that left (499), a body that did not arrive in time (408, set by app.server).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, path: str = "/v1/chat/completions") -> None:
        self.app = app
        self.metrics = metrics
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["moa_started"] = started
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.requests_in_flight.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self.metrics.requests_in_flight.dec()
            self._record(state, state.get("moa_status", status), time.perf_counter() - started)

    def _record(self, state: dict[str, Any], status: int, duration_s: float) -> None:
        model = state.get("moa_model", UNKNOWN_MODEL)
        stream = bool(state.get("moa_stream", False))
        self.metrics.requests.labels(model, str(status)).inc()
        self.metrics.request_duration.labels(model, "true" if stream else "false").observe(duration_s)
        result: MoaResult | None = state.get("moa_result")
        fields: dict[str, Any] = {
            "event": "request",
            "model": model,
            "stream": stream,
            "status": status,
            "latency_ms": round(duration_s * 1000, 1),
        }
        if result is not None:
            self.metrics.overhead.labels(model).observe(max(0.0, duration_s - result.upstream_wait_s))
            self.metrics.request_cost.labels(model).observe(result.cost_usd)
            for dropped in result.dropped:
                self.metrics.proposers_dropped.labels(model, dropped).inc()
            usage = result.usage
            fields |= {
                "upstream_calls": len(result.calls),
                "dropped_proposers": len(result.dropped),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": round(result.cost_usd, 10),
            }
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", fields_text(fields), extra={"fields": fields})
