"""docs/reference/metrics.md: every metric family the gateway registers, read from the registry of a
fresh `Metrics()`: name as exported, type, labels, help, and how it aggregates across workers."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from moa_gateway.telemetry.metrics import Metrics
from scripts.docgen.markdown import GENERATED_NOTE, code, table

SERIES_SUFFIX = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class Family:
    name: str  # as exported: a counter's with `_total`
    type: str
    labels: tuple[str, ...]
    help: str
    workers: str  # how `serve --workers N` aggregates it
    buckets: tuple[float, ...]


def _of(collector: Collector) -> list[Family]:
    if isinstance(collector, MetricWrapperBase):  # ours: labels and buckets are declared, not sampled
        kind = collector._type or ""
        mode = getattr(collector, "_multiprocess_mode", "")
        workers = {
            "livesum": "summed over live workers",
            "liveall": "one series per live worker (`pid`)",
            "livemax": "the highest over live workers",
        }
        bounds = tuple(b for b in getattr(collector, "_upper_bounds", ()) if b != float("inf"))
        return [
            Family(
                collector._name + SERIES_SUFFIX.get(kind, ""),
                kind,
                tuple(collector._labelnames),
                collector._documentation,
                workers.get(mode, mode) if kind == "gauge" else "summed over workers",
                bounds,
            )
        ]
    found = []
    for family in collector.collect():  # a library collector (process, platform): labels from samples
        labels = sorted({k for s in family.samples for k in s.labels if k not in ("le", "quantile")})
        name = family.name + SERIES_SUFFIX.get(family.type, "")
        # process_* of each live worker, labelled pid (process_metrics.WorkerProcesses); python_info once
        mode = "one series per live worker (`pid`)" if name.startswith("process_") else "one series"
        found.append(Family(name, family.type, tuple(labels), family.documentation, mode, ()))
    return found


def families() -> list[Family]:
    registry = Metrics().registry
    collectors = list(registry._collector_to_names)  # the registry's own list, in registration order
    return [family for collector in collectors for family in _of(collector)]


def _buckets(values: tuple[float, ...]) -> str:
    return ", ".join(str(int(v)) if v.is_integer() else f"{v:g}" for v in values)


def render() -> str:
    found = families()
    rows = [
        [code(f.name), f.type, ", ".join(code(label) for label in f.labels), f.help, f.workers] for f in found
    ]
    bucket_rows = [[code(f.name), _buckets(f.buckets)] for f in found if f.buckets]
    return "\n".join(
        [
            "# Metrics reference\n",
            GENERATED_NOTE,
            "Every metric family `GET /metrics` exports, read from the registry in "
            "`app/moa_gateway/telemetry/metrics.py`. Labels take values only from config names (model "
            "aliases, pipeline ids, provider names) and fixed vocabularies, never from request text. What "
            "each one is for, the label values and PromQL for the usual questions: "
            "[Metrics](../operations/metrics.md). The last column says what `/metrics` reports under "
            "`moa-gateway serve --workers N`.\n",
            table(["metric", "type", "labels", "help", "with several workers"], rows),
            "## Histogram buckets\n",
            "Upper bounds, in the metric's unit (`+Inf` implied).\n",
            table(["metric", "buckets"], bucket_rows),
        ]
    )
