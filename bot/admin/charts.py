"""Charts drawn on the server as inline SVG, for the insights page: no script, no library, no
request of their own, so the console's CSP (no inline script, `img-src 'self'`) holds. Each
function returns markup ready for a template; every text in it is escaped.

    line_chart     values per day as lines (gaps where a day has none), a dot and a tooltip
                   (`<title>`) on each value
    stacked_bars   additive values per day, one colour a series stacked in each bar
    share_bars     one horizontal bar a group: a share (0..1) with its caption
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
HEIGHT = 240
#: Room for the axis labels and the legend.
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 40
#: Colours of series without their own (platforms and languages are given theirs).
PALETTE = ("#0b57d0", "#c8102e", "#128c7e", "#e37400", "#5b4bb7", "#06c755", "#229ed9",
           "#8a6d1f", "#b3261e", "#3c4043", "#9334e6", "#188038")
GRID = "#e2e5ea"
INK = "#66707c"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str = ""


def _colored(series: Sequence[Series]) -> list[Series]:
    return [s if s.color else Series(s.name, s.values, PALETTE[n % len(PALETTE)])
            for n, s in enumerate(series)]


def scale(value: float, *, integer: bool = False) -> tuple[float, float]:
    """The y axis for values up to `value`: its top and the step between its lines, the step
    1, 2 or 5 times a power of ten (at least 1 for counts), two to five lines above zero."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(step, 1)
    return math.ceil(value / step) * step, step


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _svg(title: str, body: list[str], width: int, height: int, css_class: str) -> Markup:
    label = escape(title)
    return Markup(
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="system-ui, sans-serif" font-size="11">'
        f"<title>{label}</title>{''.join(body)}</svg>")


def _frame(labels: Sequence[str], top: float, step: float, unit: str, width: int,
           height: int) -> tuple[list[str], float, float]:
    """The grid, the y axis' figures and every few x labels; returns the markup, the plot's
    width and height."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    body = []
    for n in range(round(top / step) + 1):
        value = step * n
        y = TOP + plot_h - plot_h * value / top
        body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{width - RIGHT}" y2="{y:.1f}" '
                    f'stroke="{GRID}"/>')
        body.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
                    f"{escape(_number(value))}{escape(unit)}</text>")
    every = max(1, math.ceil(len(labels) / 8))
    for n, label in enumerate(labels):
        if n % every == 0:
            x = LEFT + plot_w * (n + 0.5) / max(len(labels), 1)
            body.append(f'<text x="{x:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle" '
                        f'fill="{INK}">{escape(label)}</text>')
    return body, plot_w, plot_h


def _legend(series: Sequence[Series], width: int) -> list[str]:
    body, x = [], LEFT
    for s in series:
        body.append(f'<rect x="{x}" y="8" width="10" height="10" rx="2" fill="{escape(s.color)}"/>'
                    f'<text x="{x + 14}" y="17" fill="#1d232b">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return body


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "",
               width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """Lines over `labels` (days); a None value breaks its line."""
    series = _colored(series)
    found = [v for s in series for v in s.values if v is not None]
    top, step_y = scale(max(found, default=0),
                        integer=all(float(v).is_integer() for v in found))
    body, plot_w, plot_h = _frame(labels, top, step_y, unit, width, height)
    step = plot_w / max(len(labels), 1)
    for s in series:
        color = escape(s.color)
        runs: list[list[str]] = [[]]
        for n, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            x, y = LEFT + step * (n + 0.5), TOP + plot_h - plot_h * value / top
            runs[-1].append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                        f"<title>{escape(s.name)} {escape(labels[n])}: "
                        f"{escape(_number(value))}{escape(unit)}</title></circle>")
        for run in runs:
            if len(run) > 1:
                body.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                            f'stroke-width="2" stroke-linejoin="round"/>')
    body += _legend(series, width)
    return _svg(title, body, width, height, "line")


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series], *,
                 width: int = WIDTH, height: int = HEIGHT) -> Markup:
    """One bar a label, the series' values stacked in it (None counts as 0)."""
    series = _colored(series)
    totals = [sum(s.values[n] or 0 for s in series) for n in range(len(labels))]
    top, step_y = scale(max(totals, default=0), integer=True)
    body, plot_w, plot_h = _frame(labels, top, step_y, "", width, height)
    step = plot_w / max(len(labels), 1)
    bar = max(step * 0.7, 1.0)
    for n, label in enumerate(labels):
        base = TOP + plot_h
        x = LEFT + step * n + (step - bar) / 2
        for s in series:
            value = s.values[n] or 0
            if not value:
                continue
            h = plot_h * value / top
            base -= h
            body.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                        f'fill="{escape(s.color)}"><title>{escape(s.name)} {escape(label)}: '
                        f"{escape(_number(value))}</title></rect>")
    body += _legend(series, width)
    return _svg(title, body, width, height, "bars")


def share_bars(title: str, rows: Sequence[tuple[str, float | None, str]], *,
               width: int = WIDTH, color: str = "#188038") -> Markup:
    """One bar a row (`label`, share 0..1 or None for no data, caption written beside it)."""
    row_h, label_w, caption_w = 26, 90, 170
    height = TOP + row_h * max(len(rows), 1) + 8
    plot_w = width - label_w - caption_w - RIGHT
    body = []
    for n in range(5):
        x = label_w + plot_w * n / 4
        body.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height - 8}" '
                    f'stroke="{GRID}"/><text x="{x:.1f}" y="{TOP - 8}" text-anchor="middle" '
                    f'fill="{INK}">{n * 25}%</text>')
    for n, (label, share, caption) in enumerate(rows):
        y = TOP + row_h * n
        body.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" '
                    f'fill="#1d232b">{escape(label)}</text>')
        if share is not None:
            body.append(f'<rect x="{label_w}" y="{y + 5}" width="{plot_w * share:.1f}" '
                        f'height="{row_h - 10}" rx="3" fill="{escape(color)}">'
                        f"<title>{escape(label)}: {escape(caption)}</title></rect>")
        body.append(f'<text x="{label_w + plot_w + 8}" y="{y + 17}" fill="{INK}">'
                    f"{escape(caption)}</text>")
    if not rows:
        body.append(f'<text x="{label_w}" y="{TOP + 17}" fill="{INK}">no data</text>')
    return _svg(title, body, width, height, "shares")
