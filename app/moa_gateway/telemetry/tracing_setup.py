"""Whether to trace, and the OTLP tracer provider when so. No OpenTelemetry import here: with tracing off
(the default) neither the SDK of the optional `otel` extra nor our tracing code is loaded."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from moa_gateway.settings import Settings

if TYPE_CHECKING:
    from moa_gateway.telemetry.tracing import Tracing

_OFF = {"", "none"}


def tracing_wanted(mode: str, environ: Mapping[str, str]) -> bool:
    """`MOA_TRACING`: on, off, or auto, which follows the standard OTel environment: on when an OTLP
    endpoint is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`."""
    if mode != "auto":
        return mode == "on"
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in _OFF:
        return False
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def open_tracing(settings: Settings, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """Tracing that exports over OTLP/HTTP as the OTel environment says (endpoint, headers, service
    name), or None when it is off. Fails at start-up if it is wanted but not installed."""
    if not tracing_wanted(settings.tracing, environ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from moa_gateway.telemetry.tracing import Tracing
        from moa_gateway.telemetry.tracing_export import StoppableExporter, bounded_shutdown
    except ImportError as exc:
        raise RuntimeError(
            "tracing is on (MOA_TRACING or OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry is not installed: "
            "pip install 'moa-gateway[otel]'"
        ) from exc
    named = "OTEL_SERVICE_NAME" in environ or "service.name" in environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    resource = Resource.create({} if named else {"service.name": "moa-gateway"})
    provider = TracerProvider(resource=resource)
    # Spans leave in batches from a thread of their own: a slow collector never holds up a request, and
    # at shutdown it holds up the exit for at most FINAL_FLUSH_S (a dead one: 12-14 s without the bound).
    exporter = StoppableExporter(OTLPSpanExporter())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    on_close = bounded_shutdown(provider, exporter)
    return Tracing(provider, capture_content=settings.trace_content, on_close=on_close)
