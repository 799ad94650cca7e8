"""Counts, times and logs each request to a guarded endpoint (every POST under /v1/: chat completions,
responses, completions, embeddings) to its last byte, streams included, labelled by endpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import StatusNoted
from moa_gateway.api.record import RequestRecord, record_of
from moa_gateway.telemetry.logs import fields_text
from moa_gateway.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)

# The `endpoint` label, by path (metrics.ENDPOINTS); any other guarded path is `other`.
ENDPOINT_OF_PATH = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}


class ChatMetricsMiddleware:
    """Records what the route and the guards left in the request's record (model, stream, result, and
    the status to record when it is not the one sent)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, guarded: Callable[[Scope], bool]) -> None:
        self.app = app
        self.metrics = metrics
        self.guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        sent = StatusNoted(send)
        endpoint = ENDPOINT_OF_PATH.get(scope["path"], "other")
        in_flight = self.metrics.requests_in_flight.labels(endpoint)

        in_flight.inc()
        try:
            await self.app(scope, receive, sent)
        finally:
            in_flight.dec()
            self._record(endpoint, record, record.status or sent.code, time.perf_counter() - record.started)

    def _record(self, endpoint: str, record: RequestRecord, status: int, duration_s: float) -> None:
        model = record.model
        self.metrics.requests.labels(endpoint, model, str(status)).inc()
        stream = "true" if record.stream else "false"
        self.metrics.request_duration.labels(endpoint, model, stream).observe(duration_s)
        result = record.result
        fields: dict[str, Any] = {
            "event": "request",
            "endpoint": endpoint,
            "model": model,
            "stream": record.stream,
            "status": status,
            "latency_ms": round(duration_s * 1000, 1),
        }
        if result is not None:
            self.metrics.overhead.labels(model).observe(max(0.0, duration_s - result.upstream_wait_s))
            self.metrics.request_cost.labels(model).observe(result.cost_usd)
            for dropped in result.dropped:
                self.metrics.proposers_dropped.labels(model, dropped).inc()
            skipped = None if result.early_exit is None else result.early_exit.skipped
            if skipped is not None:
                self.metrics.early_exits.labels(model, skipped.value).inc()
            if result.agreement is not None and result.pipeline is not None:
                self.metrics.agreement.labels(result.pipeline).observe(result.agreement.score)
            if result.gate is not None:
                decision = "pass" if result.gate.passed else "escalate"
                self.metrics.gate_decisions.labels(model, decision).inc()
            for reason, saved in result.calls_saved.items():
                self.metrics.calls_saved.labels(model, reason.value).inc(saved)
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
