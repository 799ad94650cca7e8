"""Counts, times and logs each request to a guarded endpoint (every POST under /v1/: chat completions,
responses, completions, embeddings) to its last byte, streams included, labelled by endpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from starlette.types import ASGIApp, Receive, Scope, Send

from moa_gateway.api.middleware.responses import StatusNoted
from moa_gateway.api.record import RequestRecord, record_of
from moa_gateway.telemetry.logs import fields_text
from moa_gateway.telemetry.metrics import ENDPOINTS, Metrics

logger = logging.getLogger(__name__)

# The `endpoint` label, by path (metrics.ENDPOINTS); any other guarded path is `other`.
ENDPOINT_OF_PATH = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}


class _Series(NamedTuple):
    """The children of the request metrics that one (endpoint, model, status, stream) records to."""

    requests: Any
    duration: Any
    overhead: Any
    cost: Any


class ChatMetricsMiddleware:
    """Records what the route and the guards left in the request's record (model, stream, result, and
    the status to record when it is not the one sent).

    The metrics' children are kept by their labels: prometheus_client's `labels()` checks and locks on
    every call, four of them per request (the label sets are bounded: endpoints, config names, statuses).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, guarded: Callable[[Scope], bool]) -> None:
        self.app = app
        self.metrics = metrics
        self.guarded = guarded
        self._series: dict[tuple[str, str, int, bool], _Series] = {}
        self._in_flight = {endpoint: metrics.requests_in_flight.labels(endpoint) for endpoint in ENDPOINTS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guarded(scope):
            await self.app(scope, receive, send)
            return
        record = record_of(scope)
        sent = StatusNoted(send)
        endpoint = ENDPOINT_OF_PATH.get(scope["path"], "other")
        in_flight = self._in_flight[endpoint]

        in_flight.inc()
        try:
            await self.app(scope, receive, sent)
        finally:
            in_flight.dec()
            self._record(endpoint, record, record.status or sent.code, time.perf_counter() - record.started)

    def _series_of(self, endpoint: str, model: str, status: int, stream: bool) -> _Series:
        key = (endpoint, model, status, stream)
        series = self._series.get(key)
        if series is None:
            m = self.metrics
            series = self._series[key] = _Series(
                m.requests.labels(endpoint, model, str(status)),
                m.request_duration.labels(endpoint, model, "true" if stream else "false"),
                m.overhead.labels(model),
                m.request_cost.labels(model),
            )
        return series

    def _record(self, endpoint: str, record: RequestRecord, status: int, duration_s: float) -> None:
        model = record.model
        series = self._series_of(endpoint, model, status, record.stream)
        series.requests.inc()
        series.duration.observe(duration_s)
        result = record.result
        if result is not None:
            series.overhead.observe(max(0.0, duration_s - result.upstream_wait_s))
            series.cost.observe(result.cost_usd)
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
        if logger.isEnabledFor(logging.INFO):  # the fields only when they are logged
            self._log(endpoint, record, status, duration_s)

    @staticmethod
    def _log(endpoint: str, record: RequestRecord, status: int, duration_s: float) -> None:
        fields: dict[str, Any] = {
            "event": "request",
            "endpoint": endpoint,
            "model": record.model,
            "stream": record.stream,
            "status": status,
            "latency_ms": round(duration_s * 1000, 1),
        }
        if (result := record.result) is not None:
            usage = result.usage
            fields |= {
                "upstream_calls": len(result.calls),
                "dropped_proposers": len(result.dropped),
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost_usd": round(result.cost_usd, 10),
            }
        logger.info("%s", fields_text(fields), extra={"fields": fields})
