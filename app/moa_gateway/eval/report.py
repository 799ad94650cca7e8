"""Writing an eval's report: `report.json` (the numbers and every item) and `report.html` (the same,
self-contained, with charts), and the few lines printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from moa_gateway.eval.html import render_html


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The headline figures, for the terminal."""
    sides = report["sides"]
    candidate, baseline, judge = sides["candidate"], sides["baseline"], sides["judge"]

    def rate(key: str) -> str:
        low, high = report[f"{key}_rate_ci"]
        return f"{key} {report[f'{key}_rate']:.1%} [{low:.1%}, {high:.1%}]"

    def money(value: float | None) -> str:
        return "n/a" if value is None else f"${value:.6f}"

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    return [
        f"{report['candidate']} vs {report['baseline']}, judged by {report['judge']} ({report['mode']}): "
        f"{report['judged']} of {report['items']} items judged, {report['inconsistent']} inconsistent pairs "
        f"(ties), {report['unparseable']} unparseable, {report['errors']} errors",
        f"  {rate('win')}  {rate('tie')}  {rate('loss')}   (bootstrap 95% intervals)",
        f"  cost per answer: {report['candidate']} {money(candidate['cost_per_answer_usd'])}, "
        f"{report['baseline']} {money(baseline['cost_per_answer_usd'])}; judge {money(judge['cost_usd'])} in all "
        f"({judge['calls']} calls)",
        f"  latency p50/p95: {report['candidate']} {seconds(candidate['latency_p50_s'])}/"
        f"{seconds(candidate['latency_p95_s'])} s, {report['baseline']} {seconds(baseline['latency_p50_s'])}/"
        f"{seconds(baseline['latency_p95_s'])} s",
    ]
