"""The one boundary every upstream call crosses: request body, retries, circuit breakers, timing,
usage and cost, told to the observer (metrics, logs). Implements the core's ChatBackend."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import orjson

from moa_gateway.config import GatewayConfig
from moa_gateway.core.failures import Failure, FailureKind
from moa_gateway.core.ports import CallObserver, RunContext
from moa_gateway.core.tokens import count_prompt_tokens, count_tokens
from moa_gateway.core.types import Answer, CallSpec, Choice, Delta, Usage
from moa_gateway.upstream.answers import StreamedAnswer, completion_choices, reported_usage
from moa_gateway.upstream.body import UpstreamLimits
from moa_gateway.upstream.circuit import CircuitBreaker
from moa_gateway.upstream.client import UpstreamClient
from moa_gateway.upstream.failures import rejected_error, upstream_error
from moa_gateway.upstream.pool import ConnectionPool
from moa_gateway.upstream.providers import build_transports, kind_of, secrets_of
from moa_gateway.upstream.retry import retry_delay
from moa_gateway.upstream.secrets import redact
from moa_gateway.upstream.transport import Transport

logger = logging.getLogger(__name__)


class UpstreamBackend:
    def __init__(
        self,
        config: GatewayConfig,
        client: UpstreamClient,
        observer: CallObserver,
        limits: UpstreamLimits | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self._config = config
        self._observer = observer
        self._secrets = secrets_of(config)
        self._transports: dict[str, Transport] = build_transports(config, client, limits, pool)
        self._breakers = {alias: CircuitBreaker(m.circuit_breaker) for alias, m in config.models.items()}
        self._published = dict.fromkeys(self._breakers, "closed")  # the state the observer last got

    def admit(self, model: str) -> bool:
        """Is the model's circuit closed (or ready for its one trial call)?"""
        admitted = self._breakers[model].admit()
        self._publish_circuit(model)
        return admitted

    def circuit_states(self) -> dict[str, str]:
        return {alias: breaker.state for alias, breaker in self._breakers.items()}

    async def call(
        self, spec: CallSpec, context: RunContext, *, stream: bool
    ) -> AsyncGenerator[Delta | Answer, None]:
        """One call, streamed upstream or not, retried within the run's budget until it yields its first
        delta: a retry after that would repeat what the consumer already has."""
        with self._trial_released(spec.model):
            content = self._encoded(spec, self._body(spec, stream=stream))
            trace = self._observer.call_started(spec)
            transport = self._transports[self._config.provider_of(spec.model)]
            started = time.perf_counter()
            attempt = 0
            ttft_s: float | None = None
            try:
                while True:
                    answer = StreamedAnswer(spec.model)
                    try:
                        with self._unexpected_as_bad_response(spec):
                            if stream:
                                # aclosing: a chunk we refuse must close the upstream response now.
                                chunks = transport.stream(spec.model, content, trace)
                                async with contextlib.aclosing(chunks):
                                    async for chunk in chunks:
                                        for delta in answer.feed(chunk):
                                            if ttft_s is None:
                                                ttft_s = time.perf_counter() - started
                                            yield delta
                                if not answer.saw_choices:
                                    raise upstream_error(
                                        f"model {spec.model}: the stream carried no choices", model=spec.model
                                    )
                                choices, usage = answer.choices(), answer.usage
                            else:
                                payload = await transport.complete(spec.model, content, trace)
                                choices = completion_choices(spec.model, payload)
                                usage = reported_usage(spec.model, payload.get("usage"))
                        break
                    except Failure as exc:
                        delay = (
                            None
                            if answer.started
                            else self._retry_delay(spec, exc, attempt, context, started)
                        )
                        if delay is None:
                            self._failed(spec, started, exc)
                            raise
                    await asyncio.sleep(delay)
                    attempt += 1
            except (asyncio.CancelledError, GeneratorExit):  # the run was cancelled or the stream closed
                self._observer.call_cancelled(spec, time.perf_counter() - started)
                raise
            if usage is None:
                usage = _estimated_usage(spec, choices)
            yield self._succeeded(spec, started, choices, usage, ttft_s)

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
        """Around one attempt: any exception that is not a Failure (nor a cancellation) fails this
        call as a `bad_response`, not the whole request. It may be a bug of ours rather than the
        provider's, so it is logged as an error, with its type."""
        try:
            yield
        except Failure:
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
            raise upstream_error(
                f"model {spec.model}: the provider's answer could not be handled ({name})", model=spec.model
            ) from exc

    async def embed(
        self, alias: str, body: dict[str, Any], context: RunContext
    ) -> tuple[dict[str, Any], Answer]:
        """One embeddings request to the model's provider, under its circuit breaker and retry policy: the
        provider's answer as sent, and the call's usage and cost. Raises Failure."""
        spec = CallSpec(0, "embedding", alias, [], {})
        if not self.admit(alias):
            raise Failure(
                FailureKind.CIRCUIT_OPEN,
                f"model {alias}: skipped while its circuit breaker is open",
                model=alias,
            )
        with self._trial_released(alias):
            content = self._encoded(spec, {**body, "model": self._config.upstream_name(alias)})
            trace = self._observer.call_started(spec)
            transport = self._transports[self._config.provider_of(alias)]
            started = time.perf_counter()
            attempt = 0
            try:
                while True:
                    try:
                        with self._unexpected_as_bad_response(spec):
                            payload = await transport.embed(alias, content, trace)
                            usage = reported_usage(alias, payload.get("usage"))
                        break
                    except Failure as exc:
                        delay = self._retry_delay(spec, exc, attempt, context, started)
                        if delay is None:
                            self._failed(spec, started, exc)
                            raise
                    await asyncio.sleep(delay)
                    attempt += 1
            except asyncio.CancelledError:
                self._observer.call_cancelled(spec, time.perf_counter() - started)
                raise
            if usage is None:
                usage = Usage(_input_tokens(body.get("input")), 0, estimated=True)
            return payload, self._succeeded(spec, started, [Choice("", "stop")], usage, None)

    def _encoded(self, spec: CallSpec, body: dict[str, Any]) -> bytes:
        """The request body for the provider. A body that cannot be encoded (nested past orjson's depth
        limit) is the request's fault: rejected, without a call, and not counted against the model."""
        try:
            return orjson.dumps(body)
        except orjson.JSONEncodeError as exc:
            failure = rejected_error(
                f"model {spec.model}: the request cannot be encoded for the provider ({exc})",
                model=spec.model,
            )
            self._observer.call_refused(spec, failure)
            raise failure from None

    def _body(self, spec: CallSpec, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **spec.params,
            "model": self._config.upstream_name(spec.model),
            "messages": spec.messages,
        }
        if stream:
            body["stream"] = True
            provider = self._config.providers[self._config.provider_of(spec.model)]
            if kind_of(provider).stream_usage(provider):
                body["stream_options"] = {"include_usage": True}
        return body

    def _retry_delay(
        self, spec: CallSpec, exc: Failure, attempt: int, context: RunContext, started: float
    ) -> float | None:
        """Seconds until the next attempt, or None to give up; tells the observer of a retry. No retry
        starts once the provider's `timeout_s` has passed since the call's first attempt."""
        provider = self._config.providers[self._config.provider_of(spec.model)]
        if time.perf_counter() - started >= provider.timeout_s:
            return None
        delay = retry_delay(provider.retries, exc, attempt, budget=context.retry_budget)
        if delay is not None:
            self._observer.call_retried(spec, exc, attempt, delay)
        return delay

    def _publish_circuit(self, model: str) -> None:
        """Tell the observer the model's circuit state, when it differs from what it was last told."""
        state = self._breakers[model].state
        if state != self._published[model]:
            self._published[model] = state
            self._observer.circuit_changed(model, state)

    def _succeeded(
        self,
        spec: CallSpec,
        started: float,
        choices: list[Choice],
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
        first = choices[0]
        answer = Answer(
            first.text,
            first.finish_reason,
            usage,
            cost,
            ttft_s,
            first.reasoning,
            first.tool_calls,
            first.logprobs,
            tuple(choices[1:]),
        )
        self._observer.call_succeeded(spec, duration_s, answer)
        return answer

    def _failed(self, spec: CallSpec, started: float, exc: Failure) -> None:
        if exc.kind != FailureKind.REJECTED:  # a rejection is the request's fault, not the model's
            self._breakers[spec.model].record_failure()
            self._publish_circuit(spec.model)
        self._observer.call_failed(spec, time.perf_counter() - started, exc)


def _estimated_usage(spec: CallSpec, choices: list[Choice]) -> Usage:
    """Our own count, marked, for a provider that reported no usage."""
    written = sum(count_tokens(c.text) + count_tokens(c.reasoning or "") for c in choices)
    return Usage(count_prompt_tokens(spec.messages), written, estimated=True)


def _input_tokens(value: Any) -> int:
    """Our count of an embeddings input: a text, texts, or token arrays."""
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, list):
        return sum(len(item) if isinstance(item, list) else _input_tokens(item) for item in value)
    return 0
