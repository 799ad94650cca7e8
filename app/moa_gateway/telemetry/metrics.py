"""Every Prometheus metric of the gateway, in one place, on a registry of the app's own.

Labels come only from config names (model aliases, pipeline ids, provider names) and fixed vocabularies
(role, outcome, kind, status), never from request text: an unknown model id is labelled `unknown`.
"""

from __future__ import annotations

import os
import platform
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from moa_gateway.core.types import Role, Usage
from moa_gateway.telemetry.gen_ai_metrics import GenAIMetrics
from moa_gateway.telemetry.multiprocess_metrics import render_group
from moa_gateway.telemetry.process_metrics import package_version, register_process_collectors

# OpenTelemetry GenAI semantic conventions: gen_ai.client.operation.duration (0.01 s doubling to 81.92 s)
# and gen_ai.server.time_to_first_token.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The gateway's own time per request is sub-millisecond to milliseconds.
# USD per request: a fraction of a cent for small models up to dollars for long, large MoA runs.
COST_BUCKETS = (0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Waiting for an upstream connection: none at all (under 0.1 ms) up to a queue of many seconds.
CONNECTION_WAIT_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Agreement is a share in (0, 1]: 1/n when n proposals all differ, 1.0 when they all match.
AGREEMENT_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

UNKNOWN_MODEL = "unknown"
# The `endpoint` label of the request metrics: the model endpoints (every POST under /v1/), and `other`
# for a POST to a /v1/ path that is none of them (a 404, counted all the same).
ENDPOINTS = ("chat", "completions", "responses", "embeddings", "other")
CIRCUIT_STATES = ("closed", "open", "half_open")
_MODEL_ENDPOINTS = "chat completions, completions, responses and embeddings"

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
        # Set by `serve --workers N` before prometheus_client is imported in a worker (app/moa_gateway/cli/workers.py).
        self._multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        if self._multiproc_dir is None:  # else each worker's are read from /proc at the scrape
            register_process_collectors(r)
        # Gauge modes for `serve --workers N` (Prometheus multiprocess mode; ignored in one process).
        self.build_info = Gauge(
            "moa_build_info",
            "Always 1: the moa-gateway version running and the Python version running it",
            ["version", "python_version"],
            registry=r,
            multiprocess_mode="livemax",  # one series for the group; the workers run the same build
        )
        self.build_info.labels(package_version(), platform.python_version()).set(1)
        self.requests = Counter(
            "moa_requests",
            f"Requests to the model endpoints ({_MODEL_ENDPOINTS}), by endpoint, model id (pipeline "
            "or alias) and HTTP status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "moa_request_duration_seconds",
            f"Duration of requests to the model endpoints ({_MODEL_ENDPOINTS}) to the last byte, by "
            "endpoint, model id and whether the answer was streamed",
            ["endpoint", "model", "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        # In flight is the sum over live workers.
        self.requests_in_flight = Gauge(
            "moa_requests_in_flight",
            f"Requests to the model endpoints ({_MODEL_ENDPOINTS}) being served, by endpoint",
            ["endpoint"],
            registry=r,
            multiprocess_mode="livesum",
        )
        for endpoint in ENDPOINTS:  # a series at 0 from the start, so `sum()` is 0 before any request
            self.requests_in_flight.labels(endpoint)
        self.response_ttft = Histogram(
            "moa_response_time_to_first_token_seconds",
            "Streamed responses: time from the request to the first chunk or event carrying answer content "
            "(text, reasoning or a tool call) sent to the client",
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
        self.early_exits = Counter(
            "moa_early_exits",
            "Runs cut short because a layer's proposers agreed, by what was skipped (layers, aggregator)",
            ["pipeline", "skipped"],
            registry=r,
        )
        self.calls_saved = Counter(
            "moa_calls_saved",
            "Upstream calls a pipeline names that were not made, by reason: early_exit (proposers "
            "agreed), user_turn (the turn's proposals reused), gate (the gate model's answer stood)",
            ["pipeline", "reason"],
            registry=r,
        )
        self.agreement = Histogram(
            "moa_agreement",
            "How far the last layer's proposals agreed (moa.agreement.score: the share matching the most "
            "common answer), per pipeline; runs with fewer than two proposals are not observed",
            ["pipeline"],
            buckets=AGREEMENT_BUCKETS,
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
        self.upstream_connections_in_use = Gauge(
            "moa_upstream_connections_in_use",
            "Upstream connections held by calls, by provider (the pool's total: their sum)",
            ["provider"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.upstream_connection_wait = Histogram(
            "moa_upstream_connection_wait_seconds",
            "Time an upstream call waited for a connection (its provider's cap, the pool's total)",
            ["provider"],
            buckets=CONNECTION_WAIT_BUCKETS,
            registry=r,
        )
        self.eval_verdicts = Counter(
            "moa_eval_verdicts",
            "Shadow evaluations of live requests: the judge's verdict on the pipeline against its baseline",
            ["pipeline", "baseline", "verdict"],
            registry=r,
        )
        self.shadow_dropped = Counter(
            "moa_shadow_dropped",
            "Sampled requests whose shadow evaluation was dropped (capacity, load, shutdown)",
            ["pipeline", "reason"],
            registry=r,
        )
        self.gate_decisions = Counter(
            "moa_gate_decisions",
            "Requests to a pipeline with a gate, by decision: pass (the gate model's answer stood) or "
            "escalate (it was unsure: the pipeline ran)",
            ["pipeline", "decision"],
            registry=r,
        )
        self.gate_audits = Counter(
            "moa_gate_audits",
            "Audited gate passes: the judge's verdict on the whole pipeline's answer against the gate's "
            "(win, tie, loss, error)",
            ["pipeline", "verdict"],
            registry=r,
        )
        self.gate_audits_dropped = Counter(
            "moa_gate_audits_dropped",
            "Gate passes sampled for audit whose audit was dropped (capacity, load, shutdown)",
            ["pipeline", "reason"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "moa_circuit_state",
            "Circuit breaker per model: 1 for the state it is in (closed, open, half_open), 0 for the others",
            ["model", "state"],
            registry=r,
            # Each worker has its own breakers: one series per live worker (a `pid` label), so a sum over
            # `pid` says how many workers have the model's circuit in that state.
            multiprocess_mode="liveall",
        )
        self.gen_ai = GenAIMetrics(r)

        self.cache_hits = Counter(
            "moa_cache_hits", "Requests answered from the response cache, by model id", ["model"], registry=r
        )
        self.cache_misses = Counter(
            "moa_cache_misses",
            "Requests looked up in the response cache and not found (run, and stored if they end well)",
            ["model"],
            registry=r,
        )
        self.cache_saved = Counter(
            "moa_cache_saved_usd",
            "What the runs whose answers the response cache replayed had cost, by model id",
            ["model"],
            registry=r,
        )
        self.cache_bytes_held = Gauge(
            "moa_cache_bytes",
            "Bytes of answers held by the memory response cache (SQLite and Redis hold theirs outside)",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cache_evictions = Counter(
            "moa_cache_evictions",
            "Cached answers removed before they were read again, by reason: size (room for newer "
            "answers), expired (their ttl_s passed)",
            ["reason"],
            registry=r,
        )
        self.cache_errors = Counter(
            "moa_cache_errors",
            "Response cache operations (get, put) that failed; the request ran as if uncached",
            ["operation"],
            registry=r,
        )

        self._upstream_duration = _Children(self.upstream_duration)
        self._upstream_ttft = _Children(self.upstream_ttft)
        self._upstream_tokens = _Children(self.upstream_tokens)
        self._upstream_cost = _Children(self.upstream_cost)
        self._upstream_errors = _Children(self.upstream_errors)
        self._connections_in_use = _Children(self.upstream_connections_in_use)
        self._connection_wait = _Children(self.upstream_connection_wait)
        self._circuit_state = _Children(self.circuit_state)

    def circuit_changed(self, model: str, state: str) -> None:
        """The model's circuit is now in `state`: its series says 1, the other states' 0."""
        for each in CIRCUIT_STATES:
            self._circuit_state(model, each).set(1 if each == state else 0)

    def render(self) -> bytes:
        """This process's metrics; under `serve --workers N`, the whole process group's, read from the
        files every worker writes in PROMETHEUS_MULTIPROC_DIR (counters and histograms summed)."""
        if self._multiproc_dir is None:
            return generate_latest(self.registry)
        return render_group(self._multiproc_dir)

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

    # The response cache's observer (app/moa_gateway/service/cache/store.py: CacheObserver).

    def cache_lookup(self, model: str, outcome: Literal["hit", "miss"], saved_usd: float) -> None:
        if outcome == "hit":
            self.cache_hits.labels(model).inc()
            self.cache_saved.labels(model).inc(saved_usd)
        else:
            self.cache_misses.labels(model).inc()

    def cache_evicted(self, reason: Literal["size", "expired"], entries: int) -> None:
        self.cache_evictions.labels(reason).inc(entries)

    def cache_bytes(self, change: int) -> None:
        self.cache_bytes_held.inc(change)

    def cache_error(self, operation: Literal["get", "put"]) -> None:
        self.cache_errors.labels(operation).inc()

    def connection_acquired(self, provider: str, wait_s: float) -> None:
        """An upstream call got a connection after waiting `wait_s` (the pool's PoolObserver)."""
        self._connection_wait(provider).observe(wait_s)
        self._connections_in_use(provider).inc()

    def connection_released(self, provider: str) -> None:
        self._connections_in_use(provider).dec()
