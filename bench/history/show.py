"""`bench history show`: per figure, its series across commits (a table: one row per series,
one column per commit, oldest first; a timing's ratios to the reference model in a table of their
own), then the detected steps split into regressions, improvements and changes, each with its
commit range and size. Absolute timings of busy runs are listed but not used for steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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


def formatter(
    metric: Metric, relative_to: str, values: Iterable[float]
) -> tuple[Callable[[float], str], str]:
    """How a series' values read, and their unit: the figure's display and unit, or for a ratio
    to a reference model three significant digits and 'x REFERENCE'."""
    if relative_to:
        return (lambda v: significant(v, 3)), f"x {relative_to}"
    scale = column_scale(metric, values)
    return (lambda v: number(metric, v, scale)), scale.unit


def step_values(step: Step, metric: Metric) -> str:
    """'11.3 -> 23.1 ms'."""
    fmt, unit = formatter(metric, step.series[-2], [step.before, step.after])
    return f"{fmt(step.before)} -> {fmt(step.after)}" + (f" {unit}" if unit else "")


def step_line(step: Step, metric: Metric, machines: int) -> str:
    values = step_values(step, metric)
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
    tables = points[["figure", "relative_to"]].drop_duplicates()
    figures = history.catalog.order(tables["figure"])
    tables = tables.sort_values("relative_to").sort_values(
        "figure", key=lambda f: f.map(figures.index), kind="stable"
    )
    for figure, relative_to in tables.itertuples(index=False):
        metric = history.catalog.get(figure)
        rows = points[(points["figure"] == figure) & (points["relative_to"] == relative_to)]
        fmt, unit_text = formatter(metric, relative_to, rows["value"])
        unit = f" ({unit_text})" if unit_text else ""
        lines += ["", f"{figure}: {metric.label}{unit}, {metric.direction} is better"]
        labels, cells = [], []
        for key, series in rows.groupby(list(SERIES_KEY), sort=False, dropna=False):
            by_sha = dict(zip(series["git_sha"], series["value"], strict=True))
            labels.append(series_label(key, machines > 1))
            row = []
            for sha in shown:
                text = fmt(by_sha[sha]) if sha in by_sha else "-"
                row.append(text + ("*" if (key, sha) in marks else ""))
            cells.append(row)
        lines += _table(["series", *(s[:8] for s in shown)], labels, cells)
    lines += [
        "",
        "* the first commit of a new level (absolute timings of runs on a busy machine are not "
        "used: their ratios to the reference model are)",
    ]
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
