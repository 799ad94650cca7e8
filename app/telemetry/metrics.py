"""Every Prometheus metric of the gateway, in one place, on a registry of the app's own.

Labels come only from config names (model aliases, pipeline ids, provider names) and fixed vocabularies
(role, outcome, kind, status), never from request text: an unknown model id is labelled `unknown`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from app.core.types import Role, Usage

# OpenTelemetry GenAI semantic conventions: gen_ai.client.operation.duration (0.01 s doubling to 81.92 s)
# and gen_ai.server.time_to_first_token.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The gateway's own time per request is sub-millisecond to milliseconds.
# USD per request: a fraction of a cent for small models up to dollars for long, large MoA runs.
COST_BUCKETS = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

UNKNOWN_MODEL = "unknown"

disable_created_metrics()  # type: ignore[no-untyped-call]  # the `_created` series double every scrape for no use here


class _Children:
    """A labelled metric's children, kept by label values: `labels()` validates and locks on every call,
    which adds up at five per upstream call. Our label sets are bounded (config names, fixed words)."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "moa_requests",
            "Chat completion requests, by model id and HTTP status",
            ["model", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "moa_request_duration_seconds",
            "Chat completion request duration, to the last byte",
            ["model", "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.requests_in_flight = Gauge(
            "moa_requests_in_flight", "Chat completion requests being served", registry=r
        )
        self.response_ttft = Histogram(
            "moa_response_time_to_first_token_seconds",
            "Streamed responses: time from the request to the first content token sent to the client",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.request_cost = Histogram(
            "moa_request_cost_usd",
            "Cost of one successful request (every upstream call it made), by model id",
            ["model"],
            buckets=COST_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "moa_overhead_seconds",
            "Gateway time per request not spent waiting on upstreams",
            ["model"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.proposers_dropped = Counter(
            "moa_proposers_dropped",
            "Proposer answers a layer went on without, because the call failed",
            ["pipeline", "model"],
            registry=r,
        )
        upstream = ["provider", "model", "role"]
        self.upstream_duration = Histogram(
            "moa_upstream_request_duration_seconds",
            "Upstream call duration, by outcome (ok, error, timeout, cancelled)",
            [*upstream, "outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.upstream_ttft = Histogram(
            "moa_upstream_time_to_first_token_seconds",
            "Streamed upstream calls: time to the first content token",
            upstream,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.upstream_tokens = Counter(
            "moa_upstream_tokens", "Upstream tokens, by type (input, output)", [*upstream, "type"], registry=r
        )
        self.upstream_cost = Counter(
            "moa_upstream_cost_usd", "Upstream cost in US dollars", upstream, registry=r
        )
        self.upstream_errors = Counter(
            "moa_upstream_errors",
            "Failed upstream attempts (retried or not), by kind",
            [*upstream, "kind"],
            registry=r,
        )
        self.upstream_retries = Counter(
            "moa_upstream_retries", "Upstream attempts retried", ["provider", "model"], registry=r
        )
        self.circuit_state = Gauge(
            "moa_circuit_state",
            "Circuit breaker per model: 0 closed, 1 open, 2 half-open",
            ["model"],
            registry=r,
        )

        self._upstream_duration = _Children(self.upstream_duration)
        self._upstream_ttft = _Children(self.upstream_ttft)
        self._upstream_tokens = _Children(self.upstream_tokens)
        self._upstream_cost = _Children(self.upstream_cost)
        self._upstream_errors = _Children(self.upstream_errors)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def upstream_call(
        self,
        *,
        provider: str,
        model: str,
        role: Role,
        outcome: str,
        duration_s: float,
        usage: Usage | None = None,
        cost_usd: float = 0.0,
        ttft_s: float | None = None,
        error_kind: str | None = None,
    ) -> None:
        """Record one upstream call, whatever its outcome."""
        self._upstream_duration(provider, model, role, outcome).observe(duration_s)
        if ttft_s is not None:
            self._upstream_ttft(provider, model, role).observe(ttft_s)
        if usage is not None:
            self._upstream_tokens(provider, model, role, "input").inc(usage.prompt_tokens)
            self._upstream_tokens(provider, model, role, "output").inc(usage.completion_tokens)
            self._upstream_cost(provider, model, role).inc(cost_usd)
        if error_kind is not None:
            self._upstream_errors(provider, model, role, error_kind).inc()
