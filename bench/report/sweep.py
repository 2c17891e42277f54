"""Reports of a sweep (`bench run --sweep`): the scaling plots MoE papers show (test accuracy,
forward FLOPs per example, training steps/s and peak training memory against the swept value,
one line per model) and a table with the variant as a column.

A point is the mean over seeds of each task, then over the tasks that have it (a point that
lacks a task is drawn hollow, since its average is not comparable). With several swept keys,
each key gets its own figure and each combination of the other keys its own line
(`switch, top_k=2`). The accuracy panel carries the accuracy table's 95 % intervals
(`accuracy_stats`) and the chance level (the test split's majority-class rate), which its y axis
always includes. Long axis labels wrap, so none runs into a neighbour or the title. Runs without
a sweep give no plot and no table. Imports no torch.
"""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np
import pandas as pd

from bench.records import Record
from bench.report.accuracy_stats import tasks_interval
from bench.report.colors import model_color
from bench.report.display import Scale, column_scale, header, number
from bench.report.frame import Runs, cells_frame, metrics_frame
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import CHANCE_LABEL, chance_rate, legend_outside
from bench.report.table import MISSING, Cell, Table
from suites.metric import Metric

# the figures of the four panels, as the catalog names them
PANELS = ("accuracy", "flops_fwd_per_example", "train_steps_per_s", "memory_peak_train_bytes")
LINE_STYLES = ("-", "--", ":", "-.")
LABEL_CHARS = 22  # an axis label longer than this wraps (a 2 x 2 panel is narrow)
Interval = tuple[float, float]  # (low, high) in the panel's shown unit


def swept_keys(runs: Runs) -> list[str]:
    """The `--sweep` keys the records carry, in first-appearance order."""
    return list(dict.fromkeys(k for r in runs.records for k in r.variant_values))


def _points(runs: Runs, suite: str, scale: str) -> pd.DataFrame:
    """One row per (base model, variant, metric): the value averaged over seeds, then tasks;
    `n_tasks` how many tasks it averages."""
    metrics = metrics_frame(runs.records)
    chosen = metrics[(metrics.suite == suite) & (metrics.scale == scale) & (metrics.variant != "")]
    chosen = chosen[chosen.metric.isin(PANELS)]
    if chosen.empty:
        return chosen
    keys = ["base_model", "variant", "metric"]
    per_task = chosen.groupby([*keys, "task"], sort=False)["value"].mean().reset_index()
    return (
        per_task.groupby(keys, sort=False)["value"]
        .agg(["mean", "count"])
        .reset_index()
        .rename(columns={"count": "n_tasks"})
    )


def _values_by_variant(runs: Runs) -> dict[str, dict[str, Any]]:
    return {r.variant: dict(r.variant_values) for r in runs.records if r.variant}


def _panel_scales(runs: Runs, points: pd.DataFrame) -> dict[str, tuple[Metric, Scale]]:
    """Each panel's figure and the scale its values are shown in (from the catalog)."""
    out = {}
    for name in PANELS:
        metric = runs.catalog.get(name)
        out[name] = (metric, column_scale(metric, list(points[points.metric == name]["mean"])))
    return out


@styled
def sweep_plots(runs: Runs) -> list[Plot]:
    """A 4-panel scaling figure per (suite, scale, swept key)."""
    keys = swept_keys(runs)
    if not keys:
        return []
    values = _values_by_variant(runs)
    cells = cells_frame(runs.records)
    plots = []
    for (suite, scale), _ in cells.groupby(["suite", "scale"], sort=False):
        points = _points(runs, suite, scale)
        if points.empty:
            continue
        n_tasks = len(runs.tasks(suite))
        scales = _panel_scales(runs, points)
        for key in keys:
            others = [k for k in keys if k != key]
            fig, axes = new_figure(2, 2, height=3.8)
            for ax, name in zip(axes.flat, PANELS, strict=True):
                metric, shown = scales[name]
                factor = 1 / shown.divisor
                intervals = {}
                if name == "accuracy":
                    intervals = _accuracy_intervals(runs, suite, scale, factor)
                _draw_panel(ax, points, name, key, others, values, factor, n_tasks, intervals)
                label = header(metric, shown)
                if name == "accuracy":
                    label += ", 95\u00a0% interval"  # no break inside "95 %"
                    _chance_line(ax, runs, suite, scale, factor)
                ax.set_ylabel(textwrap.fill(label, LABEL_CHARS))
                ax.set_xlabel(key.rsplit(".", 1)[-1])
            legend_outside(fig, axes[0, 0])  # below the panels: never over a label or a point
            fig.suptitle(f"{suite} ({scale}): scaling with {key}", fontsize=7)
            if (points.n_tasks < n_tasks).any():
                fig.text(0.01, 0.0, "hollow: averaged over fewer tasks", fontsize=5)
            stem = f"sweep_{key.replace('.', '_')}_{suite}_{scale}"
            plots.append((stem, fig))
    return plots


def _accuracy_intervals(
    runs: Runs, suite: str, scale: str, factor: float
) -> dict[tuple[str, str], Interval]:
    """(base model, variant) -> the 95 % interval of its accuracy point (the mean over the
    tasks it has), the accuracy table's interval when it is one task (`tasks_interval`)."""
    ok = [
        r
        for r in runs.records
        if (r.suite, r.scale) == (suite, scale)
        and r.variant
        and r.status == "ok"
        and "accuracy" in r.metrics
    ]
    cells: dict[tuple[str, str], list[Record]] = {}
    for r in ok:
        cells.setdefault((r.model, r.variant), []).append(r)
    out = {}
    for key, records in cells.items():
        tasks = [t for t in runs.tasks(suite) if any(r.task == t for r in records)]
        low, high = tasks_interval(records, tasks)
        out[key] = (low * factor, high * factor)
    return out


def _chance_line(ax, runs: Runs, suite: str, scale: str, factor: float) -> None:
    """The majority-class rate of the test split (mean over the swept tasks), as the accuracy
    table's chance mark tests it; the y axis widened to include it."""
    records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale) and r.variant]
    tasks = [t for t in runs.tasks(suite) if any(r.task == t for r in records)]
    chance = chance_rate(records, tasks)
    if chance is None:
        return
    rate = chance * factor
    ax.axhline(rate, color="black", linestyle="--", linewidth=0.6, zorder=1, label=CHANCE_LABEL)
    low, high = ax.get_ylim()
    pad = 0.05 * (max(high, rate) - min(low, rate))
    ax.set_ylim(min(low, rate - pad), max(high, rate + pad))


def _draw_panel(
    ax, points, metric, key, others, values, factor, n_tasks, intervals: dict[Any, Interval]
) -> None:
    chosen = points[points.metric == metric]
    if chosen.empty:
        ax.text(0.5, 0.5, f"no {metric}", transform=ax.transAxes, ha="center", fontsize=6)
        return
    numeric = all(
        isinstance(values[v].get(key), int | float) and not isinstance(values[v].get(key), bool)
        for v in chosen.variant
    )
    categories = list(dict.fromkeys(str(values[v].get(key)) for v in chosen.variant))
    lines: dict[tuple[str, tuple], list[tuple[Any, float, bool, str]]] = {}
    for row in chosen.itertuples():
        point = values[row.variant]
        if key not in point:
            continue
        rest = tuple((k, point.get(k)) for k in others)
        x = point[key] if numeric else categories.index(str(point[key]))
        lines.setdefault((row.base_model, rest), []).append(
            (x, row.mean * factor, row.n_tasks == n_tasks, row.variant)
        )
    rests = list(dict.fromkeys(rest for _, rest in lines))
    for (model, rest), line in lines.items():
        line.sort(key=lambda p: p[0])
        xs, ys = np.array([p[0] for p in line]), np.array([p[1] for p in line])
        style = LINE_STYLES[rests.index(rest) % len(LINE_STYLES)]
        label = model + "".join(f", {k.rsplit('.', 1)[-1]}={v}" for k, v in rest)
        ax.plot(xs, ys, style, color=model_color(model), marker="o", markersize=3, label=label)
        bars = [(p[0], p[1], intervals[(model, p[3])]) for p in line if (model, p[3]) in intervals]
        if bars:  # the accuracy table's 95 % interval of each point
            ax.errorbar(
                [b[0] for b in bars],
                [b[1] for b in bars],
                yerr=[[b[1] - b[2][0] for b in bars], [b[2][1] - b[1] for b in bars]],
                fmt="none",
                ecolor=model_color(model),
                elinewidth=0.6,
                capsize=1.5,
            )
        hollow = [p for p in line if not p[2]]
        if hollow:  # averaged over fewer tasks
            ax.scatter(
                [p[0] for p in hollow],
                [p[1] for p in hollow],
                s=16,
                facecolors="white",
                edgecolors=model_color(model),
                zorder=3,
            )
    if numeric:
        ticks = sorted({p[0] for line in lines.values() for p in line})
        if ticks and min(ticks) > 0 and max(ticks) / min(ticks) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    else:
        ax.set_xticks(range(len(categories)), categories)


def sweep_tables(runs: Runs) -> list[Table]:
    """Per (suite, scale): task, model, variant and the panels' figures (mean over seeds)."""
    if not swept_keys(runs):
        return []
    metrics = metrics_frame(runs.records)
    cells = cells_frame(runs.records)
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        group = group[group.variant != ""]
        if group.empty:
            continue
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        scales = {
            name: (
                runs.catalog.get(name),
                column_scale(runs.catalog.get(name), list(values[values.metric == name]["value"])),
            )
            for name in PANELS
        }
        rows = []
        for task in runs.tasks(suite):
            in_task = group[group.task == task]
            for (model, variant), cell_rows in in_task.groupby(
                ["base_model", "variant"], sort=False
            ):
                chosen = values[(values.task == task) & (values.base_model == model)]
                chosen = chosen[chosen.variant == variant]
                row = [Cell(task), Cell(model), Cell(variant)]
                for name in PANELS:
                    seeds = chosen[chosen.metric == name]["value"]
                    row.append(Cell(_number(seeds, *scales[name], cell_rows)))
                rows.append(tuple(row))
        headers = ("task", "model", "variant", *(header(*scales[name]) for name in PANELS))
        title = f"Sweep on {suite} at scale {scale}, mean over seeds"
        tables.append(Table(f"sweep_{suite}_{scale}", title, headers, tuple(rows), label_columns=3))
    return tables


def _number(seeds: pd.Series, metric: Metric, shown: Scale, cells: pd.DataFrame) -> str:
    if seeds.empty:
        return "OOM" if (cells.status == "oom").any() else MISSING
    return number(metric, seeds.mean(), shown)
