"""The report's charts as inline SVG (no script, no fonts or files fetched): win / tie / loss rates with
their intervals, quality against cost per answer, and the latency distributions."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from typing import Any

COLOURS = {
    "win": "#2e7d32",
    "tie": "#9e9e9e",
    "loss": "#c62828",
    "candidate": "#1565c0",
    "baseline": "#ef6c00",
}
_W = 640  # every chart's width, in SVG units (it scales to the page)
_LEFT, _RIGHT = 110, 30
Scale = Callable[[float], float]


def rates_chart(report: dict[str, Any]) -> str:
    """One bar per outcome (share of judged items) with its bootstrap 95% interval as a whisker."""
    rows = [("win", "candidate wins"), ("tie", "tie"), ("loss", "baseline wins")]
    height = 40 + 44 * len(rows)
    x = _scale(0.0, 1.0, _LEFT, _W - 140)  # room on the right for the widest label
    parts = [_grid_x(x, [i / 10 for i in range(0, 11, 2)], height - 24, 16, percent=True)]
    for i, (key, label) in enumerate(rows):
        y = 20 + 44 * i
        rate, (low, high) = report[f"{key}_rate"], report[f"{key}_rate_ci"]
        parts.append(_text(_LEFT - 8, y + 17, label, anchor="end"))
        parts.append(
            f'<rect x="{x(0):.1f}" y="{y + 4}" width="{x(rate) - x(0):.1f}" height="22" '
            f'fill="{COLOURS[key]}" opacity="0.85"/>'
        )
        parts.append(_whisker_x(x(low), x(high), y + 15))
        parts.append(_text(x(high) + 8, y + 19, f"{rate:.0%} [{low:.0%}, {high:.0%}]", size=12))
    return _svg(height, "Win, tie and loss rates with 95% intervals", parts)


def quality_cost_chart(report: dict[str, Any]) -> str:
    """Each side as a point: cost per answer across, quality up (with its 95% interval)."""
    scores, sides = report["scores"], report["sides"]
    pairwise = report["mode"] == "pairwise"
    low_y, high_y = (0.0, 1.0) if pairwise else (1.0, 10.0)
    costs = [sides[s]["cost_per_answer_usd"] or 0.0 for s in ("candidate", "baseline")]
    top_cost = _nice_ceiling(max(costs) * 1.15 or 1e-6)
    height = 300
    x = _scale(0.0, top_cost, _LEFT, _W - _RIGHT)
    y = _scale(low_y, high_y, height - 40, 20)
    ticks_y = [i / 4 for i in range(5)] if pairwise else [1.0, 2.5, 4.0, 5.5, 7.0, 8.5, 10.0]
    parts = [_grid_x(x, [top_cost * i / 4 for i in range(5)], height - 40, 20, money=True)]
    for tick in ticks_y:
        parts.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>'
        )
        parts.append(
            _text(_LEFT - 8, y(tick) + 4, f"{tick:.0%}" if pairwise else f"{tick:g}", anchor="end", size=11)
        )
    parts.append(_text(_LEFT - 70, 14, "quality", size=11))
    parts.append(_text(_W - _RIGHT, height - 6, "cost per answer (USD)", anchor="end", size=11))
    for side, cost in zip(("candidate", "baseline"), costs, strict=True):
        value, interval = scores[side], scores[f"{side}_ci"]
        if value is None:
            continue
        cx, cy = x(cost), y(value)
        if interval is not None:
            parts.append(_whisker_y(cx, y(interval[0]), y(interval[1])))
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="{COLOURS[side]}"/>')
        anchor = "end" if cx > _W / 2 else "start"
        dx = -12 if anchor == "end" else 12
        parts.append(_text(cx + dx, cy - 8, f"{report[side]} ({side})", anchor=anchor, size=12))
    return _svg(height, "Quality against cost per answer", parts)


def latency_chart(report: dict[str, Any]) -> str:
    """Each side's per-item latencies as dots, with p50 and p95 marked."""
    sides = report["sides"]
    everything = sides["candidate"]["latencies_s"] + sides["baseline"]["latencies_s"]
    top = _nice_ceiling(max(everything, default=1.0) * 1.1 or 1.0)
    height, width = 190, 2 * _W  # a wide chart: twice the width, so its text prints at the same size
    x = _scale(0.0, top, _LEFT, width - _RIGHT)
    parts = [_grid_x(x, [top * i / 4 for i in range(5)], height - 24, 16, unit="s")]
    for row, side in enumerate(("candidate", "baseline")):
        stats = sides[side]
        y = 45 + 70 * row
        parts.append(_text(_LEFT - 8, y + 4, report[side], anchor="end"))
        for i, latency in enumerate(stats["latencies_s"]):
            jitter = ((i * 7919) % 17 - 8) * 1.4  # deterministic spread, so equal values stay visible
            parts.append(
                f'<circle cx="{x(latency):.1f}" cy="{y + jitter:.1f}" r="3" fill="{COLOURS[side]}" opacity="0.55"/>'
            )
        for key, label in (("latency_p50_s", "p50"), ("latency_p95_s", "p95")):
            value = stats[key]
            if value is None:
                continue
            parts.append(
                f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{y - 16}" y2="{y + 16}" '
                f'stroke="#222" stroke-width="2"/>'
            )
            above = label == "p50"  # p50 above the dots, p95 below: close values stay readable
            parts.append(_text(x(value), y - 20 if above else y + 28, f"{label} {value:.2f}s", size=11))
    return _svg(height, "Latency per answer", parts, width)


def _svg(height: int, title: str, parts: list[str], width: int = _W) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 13) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="#222">{escape(text)}</text>'
    )


def _whisker_x(x1: float, x2: float, y: float) -> str:
    return (
        f'<g stroke="#222" stroke-width="1.5"><line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y}" y2="{y}"/>'
        f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="{y - 6}" y2="{y + 6}"/>'
        f'<line x1="{x2:.1f}" x2="{x2:.1f}" y1="{y - 6}" y2="{y + 6}"/></g>'
    )


def _whisker_y(x: float, y1: float, y2: float) -> str:
    return (
        f'<g stroke="#222" stroke-width="1.5"><line x1="{x:.1f}" x2="{x:.1f}" y1="{y1:.1f}" y2="{y2:.1f}"/>'
        f'<line x1="{x - 6:.1f}" x2="{x + 6:.1f}" y1="{y1:.1f}" y2="{y1:.1f}"/>'
        f'<line x1="{x - 6:.1f}" x2="{x + 6:.1f}" y1="{y2:.1f}" y2="{y2:.1f}"/></g>'
    )


def _grid_x(
    x: Scale,
    ticks: list[float],
    bottom: float,
    top: float,
    percent: bool = False,
    money: bool = False,
    unit: str = "",
) -> str:
    parts = []
    for tick in ticks:
        label = f"{tick:.0%}" if percent else f"${tick:.2g}" if money else f"{tick:.3g}{unit}"
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" stroke="#eee"/>')
        parts.append(_text(x(tick), bottom + 16, label, anchor="middle", size=11))
    return "".join(parts)


def _scale(low: float, high: float, out_low: float, out_high: float) -> Scale:
    span = (high - low) or 1.0

    def scale(value: float) -> float:
        return out_low + (value - low) / span * (out_high - out_low)

    return scale


def _nice_ceiling(value: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, at or above `value`."""
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0) if step * power >= value)
