"""The span export's shutdown, bounded. With the collector down, the OTLP exporter retries a batch for up
to its timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`, 10 s, backing off 1, 2, 4 s), and the SDK's shutdown waits
for the batch in flight, then retries the last one as long: SIGTERM took 12-14 s instead of 0.2 s. The
final flush gets `FINAL_FLUSH_S`; what the collector has not taken by then is dropped, and logged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

FINAL_FLUSH_S = 2.0  # docs/operations/tracing.md


class StoppableExporter(SpanExporter):
    """An exporter that `stop()` cuts short: the export in its retries gives up, later ones fail at once."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopped.is_set():
            return SpanExportResult.FAILURE
        return self._inner.export(spans)

    def stop(self) -> None:
        """Shut the inner exporter down once (that interrupts its retry backoff)."""
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
        self._inner.shutdown()

    def shutdown(self) -> None:
        self.stop()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def bounded_shutdown(
    provider: TracerProvider, exporter: StoppableExporter, bound_s: float = FINAL_FLUSH_S
) -> Callable[[], None]:
    """A shutdown for `provider` that returns within about `bound_s`: it flushes in a thread of its own,
    and past the bound stops `exporter`, dropping what is left (a daemon thread blocked in a request to
    a collector that never answers ends with the process)."""

    def shutdown() -> None:
        flushing = threading.Thread(target=provider.shutdown, name="moa-tracing-shutdown", daemon=True)
        flushing.start()
        flushing.join(bound_s)
        if flushing.is_alive():
            logger.warning(
                "tracing: the collector did not take the last spans within %g s of shutdown: dropped", bound_s
            )
            exporter.stop()

    return shutdown
