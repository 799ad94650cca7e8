"""The core's CallObserver over Prometheus metrics (the `moa_upstream_*` ones and OpenTelemetry's GenAI
histograms) and the `upstream_call` log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from moa_gateway.config import GatewayConfig
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import ProviderEndpoint, TraceContext
from moa_gateway.core.types import Answer, CallSpec
from moa_gateway.telemetry.gen_ai_metrics import GenAITarget
from moa_gateway.telemetry.logs import fields_text
from moa_gateway.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)


def gen_ai_targets(
    config: GatewayConfig, endpoints: Mapping[str, ProviderEndpoint]
) -> dict[str, GenAITarget]:
    """Each model alias as the GenAI conventions name it: its provider kind's name, its upstream id."""
    return {
        alias: GenAITarget(endpoints[model.provider].system, config.upstream_name(alias))
        for alias, model in config.models.items()
    }


class TelemetryObserver:
    def __init__(
        self,
        metrics: Metrics,
        provider_of: Mapping[str, str],
        gen_ai: Mapping[str, GenAITarget] | None = None,
    ) -> None:
        self._metrics = metrics
        self._provider_of = provider_of  # model alias -> provider name
        # model alias -> its GenAI labels; by default the provider's config name and the alias
        self._gen_ai = gen_ai or {alias: GenAITarget(p, alias) for alias, p in provider_of.items()}
        for model in provider_of:
            metrics.circuit_changed(model, "closed")

    def call_started(self, spec: CallSpec) -> TraceContext:
        return {}  # metrics and the log line are written at the call's end; no span to continue

    def call_succeeded(self, spec: CallSpec, duration_s: float, answer: Answer) -> None:
        usage = answer.usage
        self._record(spec, "ok", duration_s, usage=usage, cost_usd=answer.cost_usd, ttft_s=answer.ttft_s)
        self._log(
            logging.INFO,
            spec,
            "ok",
            duration_s,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            usage_estimated=usage.estimated,
            cost_usd=round(answer.cost_usd, 10),
            ttft_ms=None if answer.ttft_s is None else round(answer.ttft_s * 1000, 1),
        )

    def call_failed(self, spec: CallSpec, duration_s: float, failure: Failure) -> None:
        outcome = "timeout" if failure.kind == FailureKind.TIMEOUT else "error"
        self._record(spec, outcome, duration_s, error_kind=failure.kind.value)
        self._log(logging.WARNING, spec, outcome, duration_s, kind=failure.kind.value, error=failure.message)

    def call_cancelled(self, spec: CallSpec, duration_s: float) -> None:
        self._record(spec, "cancelled", duration_s)
        self._log(logging.INFO, spec, "cancelled", duration_s)

    def call_refused(self, spec: CallSpec, failure: Failure) -> None:
        self._log(logging.INFO, spec, "unencodable", 0.0, error=failure.message)

    def call_retried(self, spec: CallSpec, failure: Failure, attempt: int, delay_s: float) -> None:
        provider = self._provider_of[spec.model]
        self._metrics.upstream_errors.labels(provider, spec.model, spec.role, failure.kind.value).inc()
        self._metrics.upstream_retries.labels(provider, spec.model).inc()
        self._log(
            logging.INFO,
            spec,
            "retry",
            0.0,
            attempt=attempt + 1,
            delay_s=round(delay_s, 3),
            kind=failure.kind.value,
        )

    def circuit_changed(self, model: str, state: str) -> None:
        self._metrics.circuit_changed(model, state)

    def _record(self, spec: CallSpec, outcome: str, duration_s: float, **details: Any) -> None:
        self._metrics.upstream_call(
            provider=self._provider_of[spec.model],
            model=spec.model,
            role=spec.role,
            outcome=outcome,
            duration_s=duration_s,
            **details,
        )
        # error.type: the failure kind, `cancelled` for a call given up on, empty when it succeeded
        error_type = details.get("error_kind") or ("cancelled" if outcome == "cancelled" else "")
        self._metrics.gen_ai.call(
            "embeddings" if spec.role == "embedding" else "chat",
            self._gen_ai[spec.model],
            duration_s,
            details.get("usage"),
            error_type,
        )

    def _log(self, level: int, spec: CallSpec, outcome: str, duration_s: float, **extra: Any) -> None:
        if not logger.isEnabledFor(level):  # skip building the line at MOA_LOG_LEVEL=warning
            return
        fields = {
            "event": "upstream_call",
            "provider": self._provider_of[spec.model],
            "model": spec.model,
            "role": spec.role,
            "layer": spec.layer,
            "outcome": outcome,
            "latency_ms": round(duration_s * 1000, 1),
            **extra,
        }
        logger.log(level, "%s", fields_text(fields), extra={"fields": fields})
