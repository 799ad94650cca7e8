"""The one boundary every upstream call crosses: request body, retries, circuit breakers, timing,
usage, cost, metrics and the log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import orjson

from app.config import GatewayConfig, OpenAIProvider
from app.errors import UpstreamError, UpstreamRejectedError, redact
from app.logs import fields_text
from app.metrics import Metrics
from app.moa.types import Answer, CallSpec, Usage
from app.tokens import count_prompt_tokens, count_tokens
from app.upstream.answers import StreamedAnswer, completion_choice, reported_usage
from app.upstream.body import UpstreamLimits
from app.upstream.circuit import CircuitBreaker
from app.upstream.http import HttpTransport
from app.upstream.retry import retry_budget_var, retry_delay
from app.upstream.simulated import SimulatedTransport
from app.upstream.transport import Transport

logger = logging.getLogger(__name__)
_STATE_VALUE = {"closed": 0, "open": 1, "half_open": 2}


class UpstreamBackend:
    """Implements the engine's ChatBackend over the configured providers."""

    def __init__(
        self,
        config: GatewayConfig,
        client: httpx.AsyncClient,
        metrics: Metrics,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._secrets = secrets = config.secrets()
        self._transports: dict[str, Transport] = {
            name: HttpTransport(client, p, secrets, limits)
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
        with self._trial_released(spec.model):
            content = self._encoded(spec, stream=False)
            started = time.perf_counter()
            attempt = 0
            try:
                while True:
                    try:
                        with self._unexpected_as_bad_response(spec):
                            payload = await self._transport(spec).complete(spec.model, content)
                            text, finish_reason = completion_choice(spec.model, payload)
                            usage = reported_usage(spec.model, payload.get("usage"))
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
            if usage is None:
                usage = _estimated_usage(spec, text)
            return self._succeeded(spec, started, text, finish_reason, usage, None)

    async def stream(self, spec: CallSpec) -> AsyncGenerator[str | Answer, None]:
        with self._trial_released(spec.model):
            content = self._encoded(spec, stream=True)
            started = time.perf_counter()
            attempt = 0
            ttft_s: float | None = None
            try:
                while True:
                    answer = StreamedAnswer(spec.model)
                    try:
                        chunks = self._transport(spec).stream(spec.model, content)
                        # aclosing: a chunk we refuse must close the upstream response now, not at GC.
                        with self._unexpected_as_bad_response(spec):
                            async with contextlib.aclosing(chunks):
                                async for chunk in chunks:
                                    for delta in answer.feed(chunk):
                                        if ttft_s is None:
                                            ttft_s = time.perf_counter() - started
                                        yield delta
                            if not answer.saw_choices:
                                raise UpstreamError(
                                    f"model {spec.model}: the stream carried no choices", model=spec.model
                                )
                        break
                    except UpstreamError as exc:
                        # Once a token went out, a retry would repeat it: only a silent failure is retried.
                        delay = None if answer.parts else self._retry_delay(spec, exc, attempt)
                        if delay is None:
                            self._failed(spec, started, exc)
                            raise
                    await asyncio.sleep(delay)
                    attempt += 1
            except (asyncio.CancelledError, GeneratorExit):  # the request was cancelled or the stream closed
                self._cancelled(spec, started)
                raise
            text = "".join(answer.parts)
            usage = answer.usage if answer.usage is not None else _estimated_usage(spec, text)
            yield self._succeeded(spec, started, text, answer.finish_reason, usage, ttft_s)

    @contextlib.contextmanager
    def _trial_released(self, model: str) -> Iterator[None]:
        """Around a whole call: if the call took the breaker's half-open trial and settled nothing (the
        request's own fault, a cancellation, an error of ours), the trial is given back; after a success
        or a failure was recorded this is a no-op."""
        try:
            yield
        finally:
            self._breakers[model].release_trial()
            self._publish_circuit(model)

    @contextlib.contextmanager
    def _unexpected_as_bad_response(self, spec: CallSpec) -> Iterator[None]:
        """Around one attempt: any exception that is not an UpstreamError (nor a cancellation) fails this
        call as a `bad_response`, not the whole request. It may be a bug of ours rather than the
        provider's, so it is logged as an error, with its type."""
        try:
            yield
        except UpstreamError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            logger.error(
                "upstream call to %s failed unexpectedly: %s: %s",
                spec.model,
                name,
                redact(str(exc), self._secrets)[:300],
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            raise UpstreamError(
                f"model {spec.model}: the provider's answer could not be handled ({name})", model=spec.model
            ) from exc

    def _encoded(self, spec: CallSpec, *, stream: bool) -> bytes:
        """The request body for the provider. A body that cannot be encoded (nested past orjson's depth
        limit) is the request's fault: rejected, without a call, and not counted against the model."""
        try:
            return orjson.dumps(self._body(spec, stream=stream))
        except orjson.JSONEncodeError as exc:
            self._log(logging.INFO, spec, "unencodable", 0.0, error=str(exc))
            raise UpstreamRejectedError(
                f"model {spec.model}: the request cannot be encoded for the provider ({exc})",
                model=spec.model,
            ) from None

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
        if exc.kind != "rejected":  # a rejection is the request's fault, not the model's
            self._breakers[spec.model].record_failure()
            self._publish_circuit(spec.model)
        outcome = "timeout" if exc.kind == "timeout" else "error"
        self._observe(spec, outcome, duration_s, error_kind=exc.kind)
        self._log(logging.WARNING, spec, outcome, duration_s, kind=exc.kind, error=exc.message)

    def _cancelled(self, spec: CallSpec, started: float) -> None:
        duration_s = time.perf_counter() - started
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


def _estimated_usage(spec: CallSpec, text: str) -> Usage:
    """Our own count, marked, for a provider that reported no usage."""
    return Usage(count_prompt_tokens(spec.messages), count_tokens(text), estimated=True)
