"""The metric table of the docs (docs/operations/metrics.md) and the Grafana dashboard name only metrics the
gateway really exports, and the table names every one."""

from __future__ import annotations

import json
import re
from pathlib import Path

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


def test_the_grafana_dashboard_queries_only_exported_series() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "moa-gateway.json").read_text())
    queried = set(re.findall(r"moa_[a-z_]+", json.dumps(dashboard)))

    assert queried, "the dashboard queries moa_ metrics"
    assert queried <= set(exported()), f"not exported: {sorted(queried - set(exported()))}"
