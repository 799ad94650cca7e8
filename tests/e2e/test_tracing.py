"""OpenTelemetry traces of real runs over HTTP: the gateway in front of the real simulator, its spans
caught by the SDK's in-memory exporter, and once sent over OTLP/HTTP to a receiver started here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from moa_gateway.config import parse_config
from moa_gateway.main import create_app
from moa_gateway.settings import Settings
from moa_gateway.sim.core import SimProfile
from moa_gateway.sim.server import create_sim_app
from moa_gateway.telemetry.tracing import Tracing
from moa_gateway.telemetry.tracing_setup import tracing_wanted
from tests.support.asks import ASK
from tests.support.configs import SIM_KEY
from tests.support.gateways import serve_gateway
from tests.support.otlp import HeaderRecorder, OtlpReceiver
from tests.support.servers import HangingUpstream, ServerThread, hanging_moa_config, raw_chat_request
from tests.support.showcase import showcase_config

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class Traced:
    """A gateway whose spans go to an in-memory exporter, in front of a simulator noting trace headers."""

    def __init__(self, url: str, exporter: InMemorySpanExporter, upstream: HeaderRecorder) -> None:
        self.url = url
        self.exporter = exporter
        self.upstream = upstream

    def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        self.exporter.clear()
        self.upstream.traceparents.clear()
        response = httpx.post(
            f"{self.url}/v1/chat/completions", json={"messages": ASK, **body}, headers=headers, timeout=20
        )
        return response

    def spans(self) -> list[ReadableSpan]:
        return finished_spans(self.exporter)


def finished_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans of the last request, once its workflow span has ended."""
    deadline = time.monotonic() + 5
    while not any(s.name.startswith("invoke_workflow") for s in exporter.get_finished_spans()):
        assert time.monotonic() < deadline, "the request's span never ended"
        time.sleep(0.01)
    return list(exporter.get_finished_spans())


def in_memory(capture_content: bool = False) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, capture_content=capture_content), exporter


@pytest.fixture(scope="module")
def recorded_sim() -> Iterator[tuple[ServerThread, HeaderRecorder]]:
    upstream = HeaderRecorder(create_sim_app(SimProfile(ttft_ms=5, tokens_per_s=2000), api_key=SIM_KEY))
    with ServerThread(upstream) as server:
        yield server, upstream


@pytest.fixture(scope="module")
def traced(recorded_sim: tuple[ServerThread, HeaderRecorder]) -> Iterator[Traced]:
    sim, upstream = recorded_sim
    tracing, exporter = in_memory()
    with serve_gateway(showcase_config(sim.url), tracing=tracing) as gateway:
        yield Traced(gateway.url, exporter, upstream)


def workflow_of(spans: list[ReadableSpan]) -> ReadableSpan:
    (workflow,) = [s for s in spans if s.name.startswith("invoke_workflow")]
    return workflow


def calls_of(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_two_layer_run_is_one_workflow_span_over_a_chat_span_per_call(traced: Traced) -> None:
    response = traced.post({"model": "moa"})

    assert response.status_code == 200
    spans = traced.spans()
    workflow, calls = workflow_of(spans), calls_of(spans)
    assert workflow.name == "invoke_workflow moa" and workflow.kind == SpanKind.INTERNAL
    assert attrs(workflow) | {"moa.cost_usd": 0} == {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "moa",
        "moa.stream": False,
        "http.response.status_code": 200,
        "gen_ai.usage.input_tokens": response.json()["usage"]["prompt_tokens"],
        "gen_ai.usage.output_tokens": response.json()["usage"]["completion_tokens"],
        "moa.cost_usd": 0,
        "moa.answered_by": "omega",
        "moa.upstream_calls": 7,
        "moa.pipeline": "moa",
    }
    assert attrs(workflow)["moa.cost_usd"] == pytest.approx(response.json()["moa"]["cost_usd"])
    assert [c.name for c in calls] == ["chat alpha", "chat beta", "chat gamma"] * 2 + ["chat omega"]
    assert {c.context.trace_id for c in calls} == {workflow.context.trace_id}
    assert all(c.parent is not None and c.parent.span_id == workflow.context.span_id for c in calls)
    listed = response.json()["moa"]["calls"]
    for span, call in zip(calls, listed, strict=True):
        a = attrs(span)
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "openai" and a["moa.provider"] == "sim"
        assert a["gen_ai.request.model"] == a["gen_ai.response.model"] == call["model"]
        assert a["server.address"] == "127.0.0.1" and isinstance(a["server.port"], int)
        assert (a["moa.layer"], a["moa.role"]) == (call["layer"], call["role"])
        assert a["gen_ai.usage.input_tokens"] == call["prompt_tokens"]
        assert a["gen_ai.usage.output_tokens"] == call["completion_tokens"]
        assert a["moa.cost_usd"] == pytest.approx(call["cost_usd"])
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
        assert span.status.status_code == StatusCode.UNSET
    # Layer 2 starts when layer 1 is over; the aggregator when layer 2 is.
    assert max(c.end_time or 0 for c in calls[:3]) <= min(c.start_time or 0 for c in calls[3:6])
    assert max(c.end_time or 0 for c in calls[3:6]) <= (calls[6].start_time or 0)


def test_the_clients_traceparent_continues_and_each_call_carries_its_own_upstream(traced: Traced) -> None:
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"

    assert traced.post({"model": "moa"}, {"traceparent": traceparent}).status_code == 200

    spans = traced.spans()
    workflow = workflow_of(spans)
    assert f"{workflow.context.trace_id:032x}" == CLIENT_TRACE
    assert workflow.parent is not None and f"{workflow.parent.span_id:016x}" == CLIENT_SPAN
    sent = sorted(traced.upstream.traceparents)
    expected = sorted(f"00-{CLIENT_TRACE}-{c.context.span_id:016x}-01" for c in calls_of(spans))
    assert sent == expected and len(sent) == 7


def test_streamed_calls_carry_their_time_to_first_chunk(traced: Traced) -> None:
    response = traced.post({"model": "moa", "stream": True, "moa": {"stream_events": True}})

    assert response.status_code == 200
    spans = traced.spans()
    calls = calls_of(spans)
    assert len(calls) == 7
    for span in calls:
        a = attrs(span)
        assert a["gen_ai.request.stream"] is True
        assert 0 < a["gen_ai.response.time_to_first_chunk"] < (span.end_time or 0) - (span.start_time or 0)
    assert attrs(workflow_of(spans))["moa.stream"] is True


def test_failed_calls_are_error_spans_where_they_happened(traced: Traced) -> None:
    response = traced.post({"model": "shaky"})

    assert response.status_code == 200
    spans = traced.spans()
    by_model = {attrs(s)["moa.model"]: s for s in calls_of(spans)}
    for failed in ("broken", "flaky"):
        span = by_model[failed]
        assert span.status.status_code == StatusCode.ERROR
        assert attrs(span)["error.type"] == "server_error"
        assert span.status.description is not None and f"model {failed}" in span.status.description
    assert by_model["gamma"].status.status_code == StatusCode.UNSET  # the fallback answered
    workflow = workflow_of(spans)
    assert attrs(workflow)["moa.dropped"] == ("flaky",)
    assert workflow.status.status_code == StatusCode.UNSET


def test_a_failed_request_is_an_error_workflow_span(traced: Traced) -> None:
    response = traced.post({"model": "flaky"})

    assert response.status_code == 502
    workflow = workflow_of(traced.spans())
    assert workflow.name == "invoke_workflow flaky"
    assert workflow.status.status_code == StatusCode.ERROR and attrs(workflow)["error.type"] == "502"


def test_prompts_and_answers_are_recorded_only_when_asked(
    recorded_sim: tuple[ServerThread, HeaderRecorder],
) -> None:
    tracing, exporter = in_memory(capture_content=True)
    sim, upstream = recorded_sim
    with serve_gateway(showcase_config(sim.url), tracing=tracing) as gateway:
        answer = Traced(gateway.url, exporter, upstream).post({"model": "alpha"}).json()
        spans = finished_spans(exporter)

    (call,) = calls_of(spans)
    sent = orjson.loads(attrs(call)["gen_ai.input.messages"])
    assert sent == [{"role": "user", "parts": [{"type": "text", "content": "Why is the sky blue?"}]}]
    said = orjson.loads(attrs(call)["gen_ai.output.messages"])
    assert said[0]["parts"][0]["content"] == answer["choices"][0]["message"]["content"]
    assert said[0]["finish_reason"] == "stop"


def test_a_client_that_leaves_cancels_its_calls_and_their_spans_say_so() -> None:
    tracing, exporter = in_memory()
    upstream = HangingUpstream()
    with ServerThread(upstream) as hanging:
        config = parse_config(hanging_moa_config(hanging.url), "hanging")
        with serve_gateway(config, tracing=tracing) as gateway:
            client = raw_chat_request(gateway.port, stream=False)
            assert upstream.wait(upstream.arrived, 3)
            client.close()
            spans = finished_spans(exporter)

    calls = calls_of(spans)
    assert len(calls) == 3
    for span in calls:
        assert attrs(span)["error.type"] == "cancelled"
        assert span.status.status_code == StatusCode.ERROR
    workflow = workflow_of(spans)
    assert attrs(workflow)["http.response.status_code"] == 499
    assert attrs(workflow)["error.type"] == "cancelled"


def test_spans_reach_a_real_otlp_http_receiver(
    recorded_sim: tuple[ServerThread, HeaderRecorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = OtlpReceiver()
    sim, _ = recorded_sim
    with ServerThread(receiver) as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        with serve_gateway(showcase_config(sim.url)) as gateway:
            response = httpx.post(
                f"{gateway.url}/v1/chat/completions", json={"model": "moa", "messages": ASK}, timeout=20
            )
            assert response.status_code == 200
        # The gateway's shutdown flushed the batch.

    assert receiver.content_types and set(receiver.content_types) == {"application/x-protobuf"}
    names = sorted(s.name for s in receiver.spans)
    assert names == sorted(
        ["invoke_workflow moa", *["chat alpha", "chat beta", "chat gamma"] * 2, "chat omega"]
    )
    workflow = next(s for s in receiver.spans if s.name == "invoke_workflow moa")
    assert workflow.service == "moa-gateway" and workflow.kind == 1 and workflow.parent_span_id == ""
    for call in (s for s in receiver.spans if s.kind == 3):
        assert call.trace_id == workflow.trace_id and call.parent_span_id == workflow.span_id
        assert call.attributes["gen_ai.usage.output_tokens"] > 0


@pytest.mark.parametrize(
    ("mode", "environ", "wanted"),
    [
        ("auto", {}, False),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ("off", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ("on", {}, True),
    ],
)
def test_tracing_is_off_unless_the_otel_environment_or_the_setting_asks(
    mode: str, environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_wanted(mode, environ) is wanted


def test_with_tracing_off_no_tracing_middleware_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    app = create_app(Settings(), showcase_config("http://127.0.0.1:9"))

    assert "TracingMiddleware" not in [m.cls.__name__ for m in app.user_middleware]  # type: ignore[attr-defined]
