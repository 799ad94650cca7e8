"""A CLIENT span per upstream call (`chat {model}`, GenAI conventions), around another CallObserver: the
call's span is a child of the request's, and its W3C context goes upstream with the call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from moa_gateway.config import GatewayConfig
from moa_gateway.core.failures import Failure
from moa_gateway.core.ports import CallObserver, ProviderEndpoint, TraceContext
from moa_gateway.core.types import Answer, CallSpec
from moa_gateway.telemetry.tracing import Tracing, answer_attribute, messages_attribute

# Request parameters the conventions name, as they appear in an OpenAI request.
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}


@dataclass(frozen=True)
class CallTarget:
    """What a model alias's calls reach, as span attributes fixed at start-up."""

    name: str  # the upstream model id
    attributes: dict[str, Any]


def call_targets(config: GatewayConfig, endpoints: dict[str, ProviderEndpoint]) -> dict[str, CallTarget]:
    """Each model alias's span attributes, from its provider's endpoint (as its provider kind names it)."""
    targets = {}
    for alias, model in config.models.items():
        endpoint = endpoints[model.provider]
        name = config.upstream_name(alias)
        attributes: dict[str, Any] = {
            "gen_ai.provider.name": endpoint.system,
            "gen_ai.request.model": name,
            "moa.model": alias,
            "moa.provider": model.provider,
        }
        if endpoint.address is not None:
            attributes["server.address"] = endpoint.address
        if endpoint.port is not None:
            attributes["server.port"] = endpoint.port
        targets[alias] = CallTarget(name, attributes)
    return targets


class TracingObserver:
    def __init__(self, inner: CallObserver, tracing: Tracing, targets: dict[str, CallTarget]) -> None:
        self._inner = inner
        self._tracing = tracing
        self._targets = targets
        self._spans: dict[int, Span] = {}  # id(spec) -> the span of that call, while it runs

    def call_started(self, spec: CallSpec) -> TraceContext:
        self._inner.call_started(spec)
        target = self._targets[spec.model]
        operation = "embeddings" if spec.role == "embedding" else "chat"
        attributes = {
            "gen_ai.operation.name": operation,
            **target.attributes,
            "moa.layer": spec.layer,
            "moa.role": spec.role,
        }
        for param, attribute in _REQUEST_PARAMS.items():
            if isinstance(value := spec.params.get(param), int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        if self._tracing.capture_content and spec.messages:
            attributes["gen_ai.input.messages"] = messages_attribute(spec.messages)
        span = self._tracing.tracer.start_span(
            f"{operation} {target.name}", kind=SpanKind.CLIENT, attributes=attributes
        )
        self._spans[id(spec)] = span
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        return carrier  # the backend hands it to the provider, which sends it with each attempt

    def call_succeeded(self, spec: CallSpec, duration_s: float, answer: Answer) -> None:
        self._inner.call_succeeded(spec, duration_s, answer)
        span = self._spans.pop(id(spec), None)
        if span is None:
            return
        usage = answer.usage
        attributes: dict[str, Any] = {
            "gen_ai.response.model": self._targets[spec.model].name,
            "gen_ai.response.finish_reasons": [choice.finish_reason for choice in answer.choices()],
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "moa.cost_usd": answer.cost_usd,
        }
        if usage.cached_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
        if usage.estimated:
            attributes["moa.usage_estimated"] = True
        if answer.ttft_s is not None:
            attributes["gen_ai.request.stream"] = True
            attributes["gen_ai.response.time_to_first_chunk"] = answer.ttft_s
        if self._tracing.capture_content:
            attributes["gen_ai.output.messages"] = answer_attribute(answer.text, answer.finish_reason)
        span.set_attributes(attributes)
        span.end()

    def call_failed(self, spec: CallSpec, duration_s: float, failure: Failure) -> None:
        self._inner.call_failed(spec, duration_s, failure)
        self._end_in_error(spec, failure.kind.value, failure.message)

    def call_cancelled(self, spec: CallSpec, duration_s: float) -> None:
        self._inner.call_cancelled(spec, duration_s)
        self._end_in_error(spec, "cancelled", f"model {spec.model}: cancelled")

    def call_refused(self, spec: CallSpec, failure: Failure) -> None:
        self._inner.call_refused(spec, failure)  # refused before it started: no span

    def call_retried(self, spec: CallSpec, failure: Failure, attempt: int, delay_s: float) -> None:
        self._inner.call_retried(spec, failure, attempt, delay_s)
        if (span := self._spans.get(id(spec))) is not None:
            span.add_event(
                "moa.retry",
                {"moa.attempt": attempt + 1, "error.type": failure.kind.value, "moa.delay_s": delay_s},
            )

    def circuit_changed(self, model: str, state: str) -> None:
        self._inner.circuit_changed(model, state)

    def _end_in_error(self, spec: CallSpec, error_type: str, message: str) -> None:
        span = self._spans.pop(id(spec), None)
        if span is None:
            return
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, message))  # messages name models, never keys
        span.end()
