"""The one boundary every upstream call crosses: request body, retries, circuit breakers, timing,
usage, cost, metrics and the log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from app.config import GatewayConfig, OpenAIProvider
from app.errors import UpstreamError
from app.logs import fields_text
from app.metrics import Metrics
from app.moa.types import Answer, CallSpec, Usage
from app.tokens import count_prompt_tokens, count_tokens
from app.upstream.circuit import CircuitBreaker
from app.upstream.http import HttpTransport
from app.upstream.retry import retry_budget_var, retry_delay
from app.upstream.simulated import SimulatedTransport
from app.upstream.transport import Transport

logger = logging.getLogger(__name__)
_STATE_VALUE = {"closed": 0, "open": 1, "half_open": 2}


class UpstreamBackend:
    """Implements the engine's ChatBackend over the configured providers."""

    def __init__(self, config: GatewayConfig, client: httpx.AsyncClient, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics
        secrets = config.secrets()
        self._transports: dict[str, Transport] = {
            name: HttpTransport(client, p, secrets)
            if isinstance(p, OpenAIProvider)
            else SimulatedTransport(p)
            for name, p in config.providers.items()
        }
        self._breakers = {alias: CircuitBreaker(m.circuit_breaker) for alias, m in config.models.items()}
        for alias in config.models:
            metrics.circuit_state.labels(alias).set(0)

    def admit(self, model: str) -> bool:
        """Is the model's circuit closed (or ready for its one trial call)?"""
        admitted = self._breakers[model].admit()
        self._publish_circuit(model)
        return admitted

    def circuit_states(self) -> dict[str, str]:
        return {alias: breaker.state for alias, breaker in self._breakers.items()}

    async def complete(self, spec: CallSpec) -> Answer:
        started = time.perf_counter()
        attempt = 0
        try:
            while True:
                try:
                    payload = await self._transport(spec).complete(spec.model, self._body(spec, stream=False))
                    text, finish_reason = _parse_choice(spec.model, payload)
                    break
                except UpstreamError as exc:
                    delay = self._retry_delay(spec, exc, attempt)
                    if delay is None:
                        self._failed(spec, started, exc)
                        raise
                await asyncio.sleep(delay)
                attempt += 1
        except asyncio.CancelledError:
            self._cancelled(spec, started)
            raise
        return self._succeeded(
            spec, started, text, finish_reason, _usage(payload.get("usage"), spec, text), None
        )

    async def stream(self, spec: CallSpec) -> AsyncGenerator[str | Answer, None]:
        started = time.perf_counter()
        attempt = 0
        ttft_s: float | None = None
        parts: list[str] = []
        finish_reason = "stop"
        reported: Any = None
        try:
            while True:
                try:
                    saw_choices = False
                    async for chunk in self._transport(spec).stream(
                        spec.model, self._body(spec, stream=True)
                    ):
                        reported = chunk.get("usage") or reported
                        for choice in chunk.get("choices") or ():
                            saw_choices = True
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                if ttft_s is None:
                                    ttft_s = time.perf_counter() - started
                                parts.append(content)
                                yield content
                            finish_reason = choice.get("finish_reason") or finish_reason
                    if not saw_choices:
                        raise UpstreamError(
                            f"model {spec.model}: the stream carried no choices", model=spec.model
                        )
                    break
                except (AttributeError, TypeError) as exc:
                    error = UpstreamError(
                        f"model {spec.model}: malformed stream chunk ({exc})", model=spec.model
                    )
                    self._failed(spec, started, error)
                    raise error from None
                except UpstreamError as exc:
                    # Once a token went out, a retry would repeat it: only a silent failure is retried.
                    delay = None if parts else self._retry_delay(spec, exc, attempt)
                    if delay is None:
                        self._failed(spec, started, exc)
                        raise
                await asyncio.sleep(delay)
                attempt += 1
        except (asyncio.CancelledError, GeneratorExit):  # the request was cancelled or the stream closed
            self._cancelled(spec, started)
            raise
        text = "".join(parts)
        yield self._succeeded(spec, started, text, finish_reason, _usage(reported, spec, text), ttft_s)

    def _transport(self, spec: CallSpec) -> Transport:
        return self._transports[self._config.provider_of(spec.model)]

    def _body(self, spec: CallSpec, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **spec.params,
            "model": self._config.upstream_name(spec.model),
            "messages": spec.messages,
        }
        if stream:
            body["stream"] = True
            provider = self._config.providers[self._config.provider_of(spec.model)]
            if not isinstance(provider, OpenAIProvider) or provider.stream_include_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def _retry_delay(self, spec: CallSpec, exc: UpstreamError, attempt: int) -> float | None:
        """Seconds until the next attempt, or None to give up; counts the retry when there is one."""
        provider = self._config.provider_of(spec.model)
        policy = self._config.providers[provider].retries
        delay = retry_delay(policy, exc, attempt, budget=retry_budget_var.get())
        if delay is not None:
            self._metrics.upstream_errors.labels(provider, spec.model, spec.role, exc.kind).inc()
            self._metrics.upstream_retries.labels(provider, spec.model).inc()
            self._log(
                logging.INFO, spec, "retry", 0.0, attempt=attempt + 1, delay_s=round(delay, 3), kind=exc.kind
            )
        return delay

    def _publish_circuit(self, model: str) -> None:
        self._metrics.circuit_state.labels(model).set(_STATE_VALUE[self._breakers[model].state])

    def _succeeded(
        self,
        spec: CallSpec,
        started: float,
        text: str,
        finish_reason: str,
        usage: Usage,
        ttft_s: float | None,
    ) -> Answer:
        duration_s = time.perf_counter() - started
        self._breakers[spec.model].record_success()
        self._publish_circuit(spec.model)
        price = self._config.models[spec.model].price
        cost = (
            price.cost_usd(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if price
            else 0.0
        )
        self._observe(spec, "ok", duration_s, usage=usage, cost_usd=cost, ttft_s=ttft_s)
        self._log(
            logging.INFO,
            spec,
            "ok",
            duration_s,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            usage_estimated=usage.estimated,
            cost_usd=round(cost, 10),
            ttft_ms=None if ttft_s is None else round(ttft_s * 1000, 1),
        )
        return Answer(text, finish_reason, usage, cost, ttft_s)

    def _failed(self, spec: CallSpec, started: float, exc: UpstreamError) -> None:
        duration_s = time.perf_counter() - started
        if exc.kind == "rejected":  # the request's fault, not the model's
            self._breakers[spec.model].release_trial()
        else:
            self._breakers[spec.model].record_failure()
        self._publish_circuit(spec.model)
        outcome = "timeout" if exc.kind == "timeout" else "error"
        self._observe(spec, outcome, duration_s, error_kind=exc.kind)
        self._log(logging.WARNING, spec, outcome, duration_s, kind=exc.kind, error=exc.message)

    def _cancelled(self, spec: CallSpec, started: float) -> None:
        duration_s = time.perf_counter() - started
        self._breakers[spec.model].release_trial()
        self._observe(spec, "cancelled", duration_s)
        self._log(logging.INFO, spec, "cancelled", duration_s)

    def _observe(self, spec: CallSpec, outcome: str, duration_s: float, **details: Any) -> None:
        provider = self._config.provider_of(spec.model)
        self._metrics.upstream_call(
            provider=provider,
            model=spec.model,
            role=spec.role,
            outcome=outcome,
            duration_s=duration_s,
            **details,
        )

    def _log(self, level: int, spec: CallSpec, outcome: str, duration_s: float, **extra: Any) -> None:
        if not logger.isEnabledFor(level):  # skip building the line at MOA_LOG_LEVEL=warning
            return
        fields = {
            "event": "upstream_call",
            "provider": self._config.provider_of(spec.model),
            "model": spec.model,
            "role": spec.role,
            "layer": spec.layer,
            "outcome": outcome,
            "latency_ms": round(duration_s * 1000, 1),
            **extra,
        }
        logger.log(level, "%s", fields_text(fields), extra={"fields": fields})


def _parse_choice(alias: str, payload: dict[str, Any]) -> tuple[str, str]:
    try:
        choice = payload["choices"][0]
        content = (choice.get("message") or {}).get("content")
        return (content if isinstance(content, str) else ""), (choice.get("finish_reason") or "stop")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise UpstreamError(
            f"model {alias}: malformed response (no choices[0].message)", model=alias
        ) from None


def _usage(reported: Any, spec: CallSpec, text: str) -> Usage:
    """The provider's usage, or our estimate (marked) when it reported none."""
    if isinstance(reported, dict) and isinstance(reported.get("prompt_tokens"), int):
        details = reported.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return Usage(
            reported["prompt_tokens"],
            int(reported.get("completion_tokens") or 0),
            cached_tokens=cached if isinstance(cached, int) else 0,
        )
    return Usage(count_prompt_tokens(spec.messages), count_tokens(text), estimated=True)
