"""`bench history show`: per figure, its series across commits (a table: one row per series,
one column per commit, oldest first), then the detected steps split into regressions,
improvements and changes, each with its commit range and size."""

from __future__ import annotations

from collections.abc import Sequence

from bench.history.analysis import History, series_label
from bench.history.steps import SERIES_KEY, Step
from bench.report.display import column_scale, number, significant
from suites.metric import Metric

MAX_COLUMNS = 12


def step_size(step: Step, metric: Metric) -> str:
    """'x2.03' for a ratio, '+3.5 points' for a fraction."""
    if step.in_points:
        return f"{100 * step.change:+.1f} points"
    return f"x{significant(step.change, 3)}"


def step_line(step: Step, metric: Metric, machines: int) -> str:
    scale = column_scale(metric, [step.before, step.after])
    unit = f" {scale.unit}" if scale.unit else ""
    values = f"{number(metric, step.before, scale)} -> {number(metric, step.after, scale)}{unit}"
    current = " (current)" if step.current else ""
    return (
        f"  {step.series[-1]}  {series_label(step.series, machines > 1)}: {step_size(step, metric)}"
        f" ({values}) between {step.last_good[:8]} (last good) and {step.first_bad[:8]} "
        f"(first changed){current}"
    )


def render(history: History) -> str:
    order, points = history.order, history.points
    machines = len(history.latest)
    lines = [
        f"history: {history.runs['run_id'].nunique()} runs, {len(order.shas)} commits, "
        f"{machines} machine(s); commits ordered by {order.method}"
    ]
    shown = list(order.shas[-MAX_COLUMNS:])
    if len(order.shas) > MAX_COLUMNS:
        lines.append(f"(the last {MAX_COLUMNS} commits shown; the steps below cover all)")
    marks = {(s.series, s.first_bad) for s in history.steps}
    for figure in history.catalog.order(points["figure"].unique()):
        metric = history.catalog.get(figure)
        rows = points[points["figure"] == figure]
        scale = column_scale(metric, rows["value"])
        unit = f" ({scale.unit})" if scale.unit else ""
        lines += ["", f"{figure}: {metric.label}{unit}, {metric.direction} is better"]
        labels, cells = [], []
        for key, series in rows.groupby(list(SERIES_KEY), sort=False, dropna=False):
            by_sha = dict(zip(series["git_sha"], series["value"], strict=True))
            labels.append(series_label(key, machines > 1))
            row = []
            for sha in shown:
                text = number(metric, by_sha[sha], scale) if sha in by_sha else "-"
                row.append(text + ("*" if (key, sha) in marks else ""))
            cells.append(row)
        lines += _table(["series", *(s[:8] for s in shown)], labels, cells)
    lines += ["", "* the first commit of a new level"]
    for verdict, title in (
        ("regression", "regressions"),
        ("improvement", "improvements"),
        ("change", "changes of figures without a better direction"),
    ):
        found = [s for s in history.steps if s.verdict == verdict]
        lines.append(f"{title}: {len(found) or 'none'}")
        lines += [step_line(s, history.catalog.get(s.series[-1]), machines) for s in found]
    return "\n".join(lines)


def _table(header: Sequence[str], labels: list[str], cells: list[list[str]]) -> list[str]:
    width = max(len(header[0]), *(len(label) for label in labels))
    columns = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header[1:])]
    out = [
        "  "
        + header[0].ljust(width)
        + "".join(f"  {h:>{w}}" for h, w in zip(header[1:], columns, strict=True))
    ]
    for label, row in zip(labels, cells, strict=True):
        out.append(
            "  "
            + label.ljust(width)
            + "".join(f"  {c:>{w}}" for c, w in zip(row, columns, strict=True))
        )
    return out
