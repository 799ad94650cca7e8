"""The metric table of the docs (docs/operations/metrics.md) and the Grafana dashboard name only metrics the
gateway really exports, and the table names every one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from moa_gateway.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
METRICS_PAGE = ROOT / "docs" / "operations" / "metrics.md"
SUFFIXES = {"counter": ["_total"], "histogram": ["", "_bucket", "_sum", "_count"], "gauge": [""]}


def exported() -> dict[str, str]:
    """Every series name the registry can export, with its metric family's type."""
    families: list[Metric] = list(Metrics().registry.collect())
    return {family.name + suffix: family.type for family in families for suffix in SUFFIXES[family.type]}


def test_every_metric_in_the_docs_table_is_exported_with_that_type() -> None:
    rows = re.findall(r"^\| `((?:moa|gen_ai)_\w+)` \| (\w+) \|", METRICS_PAGE.read_text(), re.MULTILINE)
    series = exported()

    assert len(rows) >= 12
    for name, kind in rows:
        assert name in series, f"docs/operations/metrics.md lists {name}, which is not exported"
        assert series[name] == kind
    documented = {name for name, _ in rows}
    families = {name.removesuffix("_total") for name, kind in series.items() if kind != "histogram"}
    families |= {name.removesuffix("_count") for name, kind in series.items() if name.endswith("_count")}
    ours = {f for f in families if f.startswith(("moa_", "gen_ai_"))}  # not prometheus_client's process_*
    undocumented = {f for f in ours if f not in documented and f + "_total" not in documented}
    assert not undocumented, (
        f"exported but not in the table of docs/operations/metrics.md: {sorted(undocumented)}"
    )


def _label_names() -> dict[str, set[str]]:
    """Every series name the registry can export, with the label names its samples carry."""
    metrics = Metrics()
    wrappers = [*vars(metrics).values(), *vars(metrics.gen_ai).values()]
    declared = {w._name: set(w._labelnames) for w in wrappers if isinstance(w, MetricWrapperBase)}
    names: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        labels = declared.get(family.name, set()) | {k for sample in family.samples for k in sample.labels}
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


# Labels Prometheus adds to every series it scrapes, and the one multiprocess mode adds.
TARGET_LABELS = {"instance", "job", "pid"}
METRIC = re.compile(r"\b((?:moa|gen_ai|process)_[a-z_]+|python_info)\b(\{[^}]*\})?")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def test_every_dashboard_panel_queries_exported_families_and_their_labels() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "moa-gateway.json").read_text())
    families = _label_names()
    queried: set[str] = set()

    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            expr = target["expr"]
            found = METRIC.findall(expr)
            assert found, f"{panel['title']}: no metric in {expr!r}"
            for name, matchers in found:
                assert name in families, f"{panel['title']}: {name} is not exported"
                used = set(re.findall(r"(\w+)\s*(?:=~|!=|!~|=)", matchers))
                known = families[name] | TARGET_LABELS
                assert used <= known, f"{panel['title']}: {name} has no label {sorted(used - known)}"
                queried.add(name)
            # each `by (...)` label is one of some metric the expression reads
            grouped = {g.strip() for by in re.findall(r"by \(([^)]*)\)", expr) for g in by.split(",")}
            anywhere = set().union(*(families[name] for name, _ in found)) | TARGET_LABELS
            assert grouped <= anywhere, f"{panel['title']}: no metric has {sorted(grouped - anywhere)}"
    # what the dashboard is for: spending less and the upstream pool
    wanted = {
        "moa_early_exits_total",
        "moa_calls_saved_total",
        "moa_upstream_connections_in_use",
        "moa_upstream_connection_wait_seconds_bucket",
    }
    assert wanted <= queried
