"""Server-rendered SVG charts for the admin dashboard: no JavaScript, no build step, no styles.

Colours and lines are SVG presentation attributes, not ``style``: the pages'
Content-Security-Policy allows the stylesheet only. Every data point is a
``<circle>`` (or ``<rect>``) with ``data-series`` and ``data-value`` and a
``<title>`` tooltip, so people can hover and tests can read the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
PALETTE = {
    "completed": "#2f7d4f",
    "failed": "#b3261e",
    "needs_attention": "#c77700",
    "cancelled": "#6b6b6b",
    "in_progress": "#2a62b8",
    "retries": "#c77700",
    "dead_letters": "#b3261e",
    "waiting": "#2a62b8",
    "in_flight": "#7a4fb5",
    "p50": "#2a62b8",
    "p95": "#c77700",
}
FALLBACK_COLOUR = "#444444"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _colour(name: str) -> str:
    return PALETTE.get(name, FALLBACK_COLOUR)


def _nice_max(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _frame(title: str, top: float, labels: Sequence[str], plot_width: float) -> list[str]:
    """The axes, three grid lines with values, and the first, middle and last x label."""
    bottom_y = HEIGHT - BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = bottom_y - fraction * (bottom_y - TOP)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e0da"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6b6b6b">'
            f"{_number(top * fraction)}</text>"
        )
    if labels:
        picks = sorted({0, len(labels) // 2, len(labels) - 1})
        for index in picks:
            x = LEFT + plot_width * (index + 0.5) / len(labels)
            anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="11" fill="#6b6b6b">'
                f"{escape(labels[index])}</text>"
            )
    return parts


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """One line per series over the buckets ``labels``; a point where a value is non-zero."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max((v for s in series for v in s.values if v is not None), default=0))
    parts = _frame(title, top, labels, plot_width)
    count = max(1, len(labels))
    for s in series:
        colour = _colour(s.name)
        points = [
            (LEFT + plot_width * (i + 0.5) / count, TOP + plot_height * (1 - v / top), i, v)
            for i, v in enumerate(s.values)
            if v is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, i, v in points:
            if v or len(points) == 1:
                label = labels[i] if i < len(labels) else ""
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" data-series="{escape(s.name)}"'
                    f' data-value="{v:g}"><title>{escape(label)} {escape(s.name)}: {_number(v)}</title></circle>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Grouped bars: one group per label, one bar per series (a missing value draws no bar)."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max((v for s in series for v in s.values if v is not None), default=0))
    parts = _frame(title, top, [], plot_width)
    group = plot_width / max(1, len(labels))
    bar = group * 0.7 / max(1, len(series))
    for i, label in enumerate(labels):
        x0 = LEFT + group * i + group * 0.15
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                continue
            height = plot_height * value / top
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{TOP + plot_height - height:.1f}" width="{bar - 1:.1f}"'
                f' height="{height:.1f}" fill="{_colour(s.name)}" data-series="{escape(s.name)}"'
                f' data-value="{value:g}">'
                f"<title>{escape(label)} {escape(s.name)}: {_number(value)}</title></rect>"
            )
        parts.append(
            f'<text x="{LEFT + group * (i + 0.5):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11"'
            f' fill="#6b6b6b">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(names: Sequence[str], labels: dict[str, str] | None = None) -> Markup:
    """Coloured keys for a chart's series, as an SVG swatch and a word each."""
    items = [
        f'<li><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="{_colour(n)}"/></svg>'
        f" {escape((labels or {}).get(n, n.replace('_', ' ')))}</li>"
        for n in names
    ]
    return Markup(f'<ul class="chart-legend">{"".join(items)}</ul>')


ORDER_LABELS = {"in_progress": "in progress", "needs_attention": "needs attention"}


def dashboard_charts(data: dict[str, Any]) -> dict[str, Markup]:
    """The dashboard's four charts from ``shop.services.dashboard.dashboard``'s answer."""
    labels = [moment[11:16] for moment in data["buckets"]]  # HH:MM of each bucket's start (UTC)
    orders = data["orders"]
    latency = data["latency"]
    steps = [row["step"] for row in latency]
    depth = data["queue_depth"]
    return {
        "orders": line_chart("Orders placed per bucket, by outcome", labels, [Series(n, v) for n, v in orders.items()]),
        "orders_legend": legend(list(orders), ORDER_LABELS),
        "latency": bar_chart(
            "Step latency in milliseconds, p50 and p95",
            steps,
            [Series("p50", [row["p50_ms"] for row in latency]), Series("p95", [row["p95_ms"] for row in latency])],
        ),
        "latency_legend": legend(["p50", "p95"]),
        "failures": line_chart(
            "Retries and dead letters",
            labels,
            [Series("retries", data["retries"]), Series("dead_letters", data["dead_letters"])],
        ),
        "failures_legend": legend(["retries", "dead_letters"]),
        "queues": line_chart(
            "Messages waiting in the queues, and in flight",
            labels,
            [Series("waiting", depth["waiting"]), Series("in_flight", depth["in_flight"])],
        ),
        "queues_legend": legend(["waiting", "in_flight"], {"in_flight": "in flight"}),
    }
