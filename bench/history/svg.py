"""One series as a small inline SVG chart: the sample band (lowest to highest sample of each
commit's runs) as a shaded area, the values as a line of dots (a busy run's dot hollow), and
each detected step as a dashed vertical line between its two commits, linked to the first
changed commit. Written as text: no plotting library, nothing fetched by the page."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence

import pandas as pd

from bench.history.steps import Step

WIDTH, HEIGHT = 310, 130
LEFT, RIGHT, TOP, BOTTOM = 66, 8, 8, 22
COLORS = {"regression": "#c62828", "improvement": "#2e7d32", "change": "#757575"}


def chart(
    series: pd.DataFrame,
    steps: Sequence[Step],
    commits: Sequence[str],
    fmt: Callable[[float], str],
    link: Callable[[str], str | None],
) -> str:
    """`series`: its commit points (git_sha, value, low, high, busy, dirty) in commit order;
    `commits`: every commit of the history, oldest first (the x axis); `fmt` shows a value."""
    x_of = {sha: i for i, sha in enumerate(commits)}
    lows = [v for v in (*series["low"], *series["value"]) if math.isfinite(v)]
    highs = [v for v in (*series["high"], *series["value"]) if math.isfinite(v)]
    y_min, y_max = min(lows), max(highs)
    if y_max == y_min:
        y_min, y_max = y_min - abs(y_min) * 0.05 - 1e-12, y_max + abs(y_max) * 0.05 + 1e-12
    span_x = max(len(commits) - 1, 1)

    def px(i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * i / span_x

    def py(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (v - y_min) / (y_max - y_min))

    xs = [px(x_of[s]) for s in series["git_sha"]]
    parts = [
        f'<svg class="trend" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{html.escape(fmt(y_max))}</text>',
        f'<text x="{LEFT - 4}" y="{HEIGHT - BOTTOM}" text-anchor="end">'
        f"{html.escape(fmt(y_min))}</text>",
    ]
    band = [(x, py(h)) for x, h in zip(xs, series["high"], strict=True)]
    band += [(x, py(lo)) for x, lo in reversed(list(zip(xs, series["low"], strict=True)))]
    parts.append(f'<polygon class="band" points="{_points(band)}"/>')
    line = [(x, py(v)) for x, v in zip(xs, series["value"], strict=True)]
    parts.append(f'<polyline class="line" points="{_points(line)}"/>')
    for step in steps:
        x = (px(x_of[step.last_good]) + px(x_of[step.first_bad])) / 2
        title = html.escape(f"{step.verdict}: {step.last_good[:8]} -> {step.first_bad[:8]}")
        mark = (
            f'<line class="step {step.verdict}" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{COLORS[step.verdict]}"><title>{title}</title></line>'
        )
        url = link(step.first_bad)
        parts.append(f'<a href="{html.escape(url)}">{mark}</a>' if url else mark)
    for x, (_, row) in zip(xs, series.iterrows(), strict=True):
        tip = f"{row['git_sha'][:8]}: {fmt(row['value'])}"
        tip += (
            f" (samples {fmt(row['low'])} to {fmt(row['high'])})"
            if row["high"] > row["low"]
            else ""
        )
        tip += " busy" if row["busy"] else ""
        tip += " dirty" if row["dirty"] else ""
        css = "dot busy" if row["busy"] else "dot"
        parts.append(
            f'<circle class="{css}" cx="{x:.1f}" cy="{py(row["value"]):.1f}" r="2.5">'
            f"<title>{html.escape(tip)}</title></circle>"
        )
    for i in sorted({0, len(commits) - 1}):
        anchor = "start" if i == 0 else "end"
        parts.append(
            f'<text x="{px(i):.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">{commits[i][:8]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _points(xy: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
