"""The eval report as one self-contained HTML page: headline, charts (inline SVG), tables of cost,
tokens and latency, per-category rates, and every item with its answers and verdicts. Readable offline:
no script, no stylesheet or font fetched. Every text from the dataset or a model is escaped."""

from __future__ import annotations

from html import escape
from typing import Any

from moa_gateway.eval.charts import latency_chart, quality_cost_chart, rates_chart

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #666; margin: 0 0 18px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { flex: 1 1 140px; border: 1px solid #ddd; border-radius: 8px; padding: 10px 14px; }
.card b { display: block; font-size: 22px; } .card span { color: #666; font-size: 12px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.charts figure { margin: 0; border: 1px solid #eee; border-radius: 8px; padding: 8px; }
.charts figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin: 0 0 4px 4px; } .chart { width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #eee; padding: 5px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; } th { background: #f5f5f5; }
details { border-bottom: 1px solid #eee; padding: 4px 0; } summary { cursor: pointer; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: 8px; border-radius: 6px; margin: 4px 0; }
.win { color: #2e7d32; } .loss { color: #c62828; } .tie, .none { color: #777; }
.note { color: #555; }
"""


def render_html(report: dict[str, Any]) -> str:
    title = f"{report['candidate']} vs {report['baseline']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">judged by {escape(report["judge"])} ({escape(report["mode"])}) on '
        f"{escape(report['dataset'])}: {report['judged']} of {report['items']} items judged</p>",
        _cards(report),
        '<div class="charts">',
        f"<figure><figcaption>Win rate (95% interval)</figcaption>{rates_chart(report)}</figure>",
        f"<figure><figcaption>Quality against cost per answer</figcaption>{quality_cost_chart(report)}</figure>",
        f'<figure class="wide"><figcaption>Latency per answer</figcaption>{latency_chart(report)}</figure>',
        "</div>",
        "<h2>Cost, tokens and latency</h2>",
        _sides_table(report),
        "<h2>By category</h2>",
        _categories_table(report),
        "<h2>Items</h2>",
        *(_item(report, r) for r in report["results"]),
        _how_to_read(report),
    ]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}: moa-gateway eval</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style>'
        f"</head><body><main>{''.join(body)}</main></body></html>\n"
    )


def _cards(report: dict[str, Any]) -> str:
    low, high = report["win_rate_ci"]
    sides = report["sides"]
    cost_c, cost_b = sides["candidate"]["cost_per_answer_usd"], sides["baseline"]["cost_per_answer_usd"]
    p50_c, p50_b = sides["candidate"]["latency_p50_s"], sides["baseline"]["latency_p50_s"]
    cards = [
        (f"{report['win_rate']:.0%}", f"win rate, 95% interval {low:.0%} to {high:.0%}"),
        (f"{report['tie_rate']:.0%} / {report['loss_rate']:.0%}", "tie / loss rate"),
        (_ratio(cost_c, cost_b), f"cost per answer: {_usd(cost_c)} vs {_usd(cost_b)}"),
        (_ratio(p50_c, p50_b), f"p50 latency: {_seconds(p50_c)} vs {_seconds(p50_b)}"),
        (_usd(sides["judge"]["cost_usd"]), f"the judge's cost, {sides['judge']['calls']} calls"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'
            for value, label in cards
        )
        + "</div>"
    )


def _sides_table(report: dict[str, Any]) -> str:
    sides = report["sides"]
    head = (
        "<tr><th></th><th>model</th><th>answers</th><th>cost per answer</th><th>cost in all</th>"
        "<th>tokens in / out per answer</th><th>latency p50</th><th>latency p95</th></tr>"
    )
    rows = []
    for side in ("candidate", "baseline"):
        s = sides[side]
        rows.append(
            f"<tr><td>{side}</td><td>{escape(report[side])}</td>"
            f"<td>{s['answers']} ({s['calls']} calls, {s['cached']} cached)</td>"
            f"<td>{_usd(s['cost_per_answer_usd'])}</td><td>{_usd(s['cost_usd'])}</td>"
            f"<td>{_num(s['prompt_tokens_per_answer'])} / {_num(s['completion_tokens_per_answer'])}</td>"
            f"<td>{_seconds(s['latency_p50_s'])}</td><td>{_seconds(s['latency_p95_s'])}</td></tr>"
        )
    judge = sides["judge"]
    rows.append(
        f"<tr><td>judge</td><td>{escape(report['judge'])}</td><td>{judge['calls']} calls ({judge['cached']} "
        f"cached, {judge['retries']} retried)</td><td>{_usd(judge['cost_per_item_usd'])} per item</td>"
        f"<td>{_usd(judge['cost_usd'])}</td><td>{judge['prompt_tokens']} / {judge['completion_tokens']} in all</td>"
        "<td></td><td></td></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _categories_table(report: dict[str, Any]) -> str:
    head = (
        "<tr><th>category</th><th>items</th><th>win</th><th>95% interval</th><th>tie</th><th>loss</th>"
        "<th>quality candidate / baseline</th><th>cost per answer candidate / baseline</th></tr>"
    )
    rows = []
    for name, c in report["categories"].items():
        low, high = c["win_rate_ci"]
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{c['judged']}/{c['items']}</td><td>{c['win_rate']:.0%}</td>"
            f"<td>{low:.0%} to {high:.0%}</td><td>{c['tie_rate']:.0%}</td><td>{c['loss_rate']:.0%}</td>"
            f"<td>{_num(c['scores']['candidate'])} / {_num(c['scores']['baseline'])}</td>"
            f"<td>{_usd(c['candidate_cost_per_answer_usd'])} / {_usd(c['baseline_cost_per_answer_usd'])}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _item(report: dict[str, Any], result: dict[str, Any]) -> str:
    outcome = result["outcome"]
    if result["error"]:
        status = f"error: {result['error']}"
    elif result["unparseable"]:
        status = "unparseable verdict"
    else:
        status = outcome + (" (inconsistent pair)" if result["inconsistent"] else "")
    verdicts = ", ".join(
        v["label"] or (f"{v['rating']:g}" if v["rating"] is not None else "none") for v in result["verdicts"]
    )
    parts = [
        f'<details><summary><span class="{escape(outcome or "none")}">{escape(status)}</span> '
        f"[{escape(result['category'])}] {escape(result['id'])}: {escape(_short(result['question']))}</summary>",
        f"<pre>{escape(result['question'])}</pre>",
    ]
    for side in ("candidate", "baseline"):
        answer = result[side]
        if answer is not None:
            parts.append(
                f"<p><b>{escape(report[side])}</b> ({_usd(answer['cost_usd'])}, {answer['latency_s']:.2f} s)</p>"
                f"<pre>{escape(answer['answer'])}</pre>"
            )
    if result["verdicts"]:
        parts.append(f"<p><b>verdicts</b> ({escape(verdicts)})</p>")
        parts += [f"<pre>{escape(v['subject'])}: {escape(v['reply'])}</pre>" for v in result["verdicts"]]
    return "".join(parts) + "</details>"


def _how_to_read(report: dict[str, Any]) -> str:
    if report["mode"] == "pairwise":
        method = (
            "The judge compared the two answers twice, with their positions swapped. An item is a win when "
            "both verdicts prefer the candidate, a loss when both prefer the baseline, and a tie otherwise: "
            f"{report['inconsistent']} pairs whose two verdicts disagreed count as ties."
        )
    else:
        method = "The judge rated each answer from 1 to 10 on its own; the higher rating wins the item."
    return (
        '<h2>How to read this</h2><p class="note">'
        + escape(
            f"{method} Intervals are percentile bootstrap 95% intervals over the items: if the win rate's "
            "interval lies above the loss rate's, the candidate is better on prompts like these. "
            f"{report['unparseable']} items had a verdict the judge did not give in the required format "
            f"twice, and {report['errors']} failed to answer; neither counts in the rates. Cost and tokens "
            "are per answer (all turns of an item); latency is as measured when the answer was made."
        )
        + "</p>"
    )


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a is not None and b else "n/a"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}" if value < 10 else f"{value:.0f}"


def _short(text: str, limit: int = 90) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
