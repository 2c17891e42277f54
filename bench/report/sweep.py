"""Reports of a sweep (`bench run --sweep`): the scaling plots MoE papers show (test accuracy,
forward FLOPs per example, training steps/s and peak training memory against the swept value,
one line per model) and a table with the variant as a column.

A point is the mean over seeds of each task, then over the tasks that have it (a point that
lacks a task is drawn hollow, since its average is not comparable). With several swept keys,
each key gets its own figure and each combination of the other keys its own line
(`switch, top_k=2`). Runs without a sweep give no plot and no table. Imports no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bench.report.colors import model_color
from bench.report.display import Scale, column_scale, header, number
from bench.report.frame import Runs, cells_frame, metrics_frame
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.table import MISSING, Cell, Table
from suites.metric import Metric

# the figures of the four panels, as the catalog names them
PANELS = ("accuracy", "flops_fwd_per_example", "train_steps_per_s", "memory_peak_train_bytes")
LINE_STYLES = ("-", "--", ":", "-.")


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
            fig, axes = new_figure(2, 2, height=3.2)
            for ax, name in zip(axes.flat, PANELS, strict=True):
                metric, shown = scales[name]
                _draw_panel(ax, points, name, key, others, values, 1 / shown.divisor, n_tasks)
                ax.set_ylabel(header(metric, shown))
                ax.set_xlabel(key.rsplit(".", 1)[-1])
            axes[0, 0].legend(loc="best", frameon=False)
            fig.suptitle(f"{suite} ({scale}): scaling with {key}", fontsize=7)
            if (points.n_tasks < n_tasks).any():
                fig.text(0.01, 0.0, "hollow: averaged over fewer tasks", fontsize=5)
            stem = f"sweep_{key.replace('.', '_')}_{suite}_{scale}"
            plots.append((stem, fig))
    return plots


def _draw_panel(ax, points, metric, key, others, values, factor, n_tasks) -> None:
    chosen = points[points.metric == metric]
    if chosen.empty:
        ax.text(0.5, 0.5, f"no {metric}", transform=ax.transAxes, ha="center", fontsize=6)
        return
    numeric = all(
        isinstance(values[v].get(key), int | float) and not isinstance(values[v].get(key), bool)
        for v in chosen.variant
    )
    categories = list(dict.fromkeys(str(values[v].get(key)) for v in chosen.variant))
    lines: dict[tuple[str, tuple], list[tuple[Any, float, bool]]] = {}
    for row in chosen.itertuples():
        point = values[row.variant]
        if key not in point:
            continue
        rest = tuple((k, point.get(k)) for k in others)
        x = point[key] if numeric else categories.index(str(point[key]))
        lines.setdefault((row.base_model, rest), []).append(
            (x, row.mean * factor, row.n_tasks == n_tasks)
        )
    rests = list(dict.fromkeys(rest for _, rest in lines))
    for (model, rest), line in lines.items():
        line.sort(key=lambda p: p[0])
        xs, ys = np.array([p[0] for p in line]), np.array([p[1] for p in line])
        style = LINE_STYLES[rests.index(rest) % len(LINE_STYLES)]
        label = model + "".join(f", {k.rsplit('.', 1)[-1]}={v}" for k, v in rest)
        ax.plot(xs, ys, style, color=model_color(model), marker="o", markersize=3, label=label)
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
