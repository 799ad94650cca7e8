"""OpenTelemetry traces of chat completions, after the GenAI semantic conventions: one
`invoke_workflow {model}` span (INTERNAL) per request, and under it one `chat {model}` span (CLIENT) per
upstream call (`trace_observer.py`). A client's W3C `traceparent` continues its trace."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from moa_gateway.core.reports import AgreementReport
from moa_gateway.core.types import Message, MoaResult

CLIENT_CLOSED = 499
EVALUATION_EVENT = "gen_ai.evaluation.result"  # the GenAI conventions' event for a score of an output


class Tracing:
    """A tracer, whether prompts and answers may be recorded, and how to flush at shutdown."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        capture_content: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.tracer = provider.get_tracer("moa-gateway", "0.1.0")
        self.capture_content = capture_content
        self._on_close = on_close

    def close(self) -> None:
        """Export what is left (a provider the gateway made itself); a provider given to it is the
        giver's to shut down."""
        if self._on_close is not None:
            self._on_close()

    @contextlib.contextmanager
    def request_span(self, headers: Mapping[str, str]) -> Iterator[Span]:
        """A request's `invoke_workflow` span, current while the request runs (so call spans and the
        tasks of the run see it); the caller ends it with `end_request`. Its parent is the span already
        current (a server span of another instrumentation), else the client's `traceparent`."""
        current = trace.get_current_span().get_span_context().is_valid
        parent = None if current else propagate.extract(headers)
        span = self.tracer.start_span(
            "invoke_workflow",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={"gen_ai.operation.name": "invoke_workflow"},
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            yield span
        finally:
            otel_context.detach(token)

    def end_request(
        self, span: Span, *, model: str, stream: bool, status: int, result: MoaResult | None
    ) -> None:
        """Name the request's span after the model id it asked for, say how it went, and end it."""
        span.update_name(f"invoke_workflow {model}")
        attributes: dict[str, Any] = {
            "gen_ai.workflow.name": model,
            "moa.stream": stream,
            "http.response.status_code": status,
        }
        if result is not None:
            usage = result.usage
            attributes |= {
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "moa.cost_usd": result.cost_usd,
                "moa.answered_by": result.answered_by,
                "moa.upstream_calls": len(result.calls),
            }
            if result.pipeline is not None:
                attributes["moa.pipeline"] = result.pipeline
            if result.dropped:
                attributes["moa.dropped"] = result.dropped
            if result.degraded is not None:
                attributes["moa.degraded"] = result.degraded.value
            if result.agreement is not None:
                span.add_event(EVALUATION_EVENT, evaluation_attributes(result.agreement))
            for call in result.calls:  # skipped models made no call, so have no span of their own
                if call.status == "skipped":
                    span.add_event(
                        "moa.call.skipped",
                        {"moa.model": call.model, "moa.layer": call.layer, "error.type": "circuit_open"},
                    )
        span.set_attributes(attributes)
        if status >= 400:
            error = "cancelled" if status == CLIENT_CLOSED else str(status)
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()


def evaluation_attributes(report: AgreementReport) -> dict[str, Any]:
    """The proposers' agreement as a `gen_ai.evaluation.result` event's attributes. Its label:
    `unanimous` (every proposal matches), `majority` (more than half do) or `split`."""
    label = "unanimous" if report.score >= 1.0 else "majority" if report.score > 0.5 else "split"
    dissent = f"; dissent: {', '.join(report.dissent)}" if report.dissent else ""
    return {
        "gen_ai.evaluation.name": "moa.agreement",
        "gen_ai.evaluation.score.value": report.score,
        "gen_ai.evaluation.score.label": label,
        "gen_ai.evaluation.explanation": (
            f"{round(report.score * report.proposals)} of {report.proposals} proposals of layer "
            f"{report.layer} match the most common answer ({report.method}){dissent}"
        ),
        "moa.agreement.method": report.method,
        "moa.agreement.layer": report.layer,
        "moa.agreement.dissent": report.dissent,
    }


def messages_attribute(messages: list[Message]) -> str:
    """Chat messages in the conventions' `gen_ai.input.messages` shape, as JSON (text parts only)."""
    return orjson.dumps([_message(m) for m in messages]).decode()


def answer_attribute(text: str, finish_reason: str) -> str:
    """An answer in the conventions' `gen_ai.output.messages` shape, as JSON."""
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": text}],
        "finish_reason": finish_reason,
    }
    return orjson.dumps([message]).decode()


def _message(message: Message) -> dict[str, Any]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append({"type": "text", "content": part.get("text", "")})
            elif isinstance(part, dict):
                parts.append({"type": str(part.get("type", "unknown"))})
    return {"role": message.get("role", "user"), "parts": parts}
