"""Cost plots from records, sized for one column of a paper and saved as PNG and PDF: accuracy
against a cost (FLOPs, speed; bubble area = peak training memory) and speed and memory against
sequence length. Axis labels and units come from the metric catalog (`Runs.catalog`); each model
keeps one colour in every plot (`bench.report.colors`). The training plots (expert load,
curves) are in `bench.report.plots_training`; the canvas in `bench.report.plot_figure`.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from bench.metric_catalog import sampled_range
from bench.report.accuracy_stats import tasks_interval
from bench.report.colors import model_color
from bench.report.display import column_scale, header, si_scale
from bench.report.frame import Runs, metrics_frame, model_label
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import (
    CHANCE_LABEL,
    VARIANT_MARKERS,
    bubble_key,
    chance_rate,
    legend_outside,
    length_families,
    plot_colors,
    si_log_ticks,
    sweep_families,
)
from bench.report.plots_budget import budget_curves, pareto_plot
from bench.report.plots_training import expert_load, training_curves

BUBBLE_MIN, BUBBLE_MAX = 20.0, 220.0  # marker areas (pt^2) of the smallest and largest memory
MEMORY_METRIC = "memory_peak_train_bytes"


@styled
def accuracy_vs(runs: Runs, x_metric: str) -> list[Plot]:
    """Average test accuracy over tasks against `x_metric` (mean over the same tasks), one
    bubble per model sized by peak training memory; per (suite, scale) with both metrics.

    Accuracy carries the accuracy table's 95 % interval (`accuracy_stats.cell_stats`; over
    several tasks the interval of the mean of the tasks' bootstrap replicates) and the chance
    level is a labelled line (the majority-class rate of the test split, mean over the same
    tasks) that the y axis always includes. The x axis is logarithmic in the figure's base unit,
    each decade labelled (1k, 1M: `si_log_ticks`); a timing with stored samples gets bars from
    its slowest to its fastest sample. The sweep variants of one model share its hue (shades in
    sweep order), are joined by a thin line in sweep order and take distinct markers; larger
    bubbles are drawn under smaller ones, so no variant hides another. Legend and bubble key
    sit outside the axes."""
    metrics = metrics_frame(runs.records)
    x_figure, accuracy = runs.catalog.get(x_metric), runs.catalog.get("accuracy")
    y_scale = column_scale(accuracy, [])
    colors = plot_colors(runs.records)
    plots = []
    for (suite, scale), frame in metrics.groupby(["suite", "scale"], sort=False):
        per_task = frame.groupby(["model", "task", "metric"], sort=False)["value"].mean()
        per_task = per_task.unstack("metric")
        if "accuracy" not in per_task or x_metric not in per_task:
            continue
        both = per_task.dropna(subset=["accuracy", x_metric])
        if both.empty:
            continue
        tasks = runs.tasks(suite)
        present = set(both.index.get_level_values("task"))
        averaged = [t for t in tasks if t in present]  # the tasks that have a point
        points = both.groupby(level="model", sort=False).mean(numeric_only=True)
        counts = both.groupby(level="model", sort=False).size()
        memory = points.get(MEMORY_METRIC)
        records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale)]
        fig, axes = new_figure(height=2.8)
        ax = axes[0, 0]
        spread_drawn = False
        families = sweep_families([r for r in records if model_label(r) in points.index])
        for base, labels in families.items():
            xs, ys = [], []
            sizes = {label: _bubble(memory, label) for label in labels}
            # smaller bubbles on top: the z-order falls as the area grows
            by_size = sorted(labels, key=lambda label: -sizes[label])
            for index, model in enumerate(labels):
                point = points.loc[model]
                label = model if counts[model] == len(tasks) else f"{model}*"
                x, y = point[x_metric], point["accuracy"] / y_scale.divisor
                cells = [r for r in records if model_label(r) == model and r.status == "ok"]
                model_tasks = sorted(both.loc[model].index)
                low, high = tasks_interval(cells, model_tasks)
                yerr = [[y - low / y_scale.divisor], [high / y_scale.divisor - y]]
                spread = _mean_range(cells, x_metric, runs)
                xerr = None
                if spread is not None:
                    xerr = [[max(x - spread[0], 0.0)], [max(spread[1] - x, 0.0)]]
                    spread_drawn = True
                z = 2.0 + by_size.index(model) / len(labels)
                ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor=colors[model],
                            elinewidth=0.6, capsize=1.5, zorder=z)  # fmt: skip
                marker = VARIANT_MARKERS[index % len(VARIANT_MARKERS)] if len(labels) > 1 else "o"
                ax.scatter(x, y, s=sizes[model], color=colors[model], marker=marker, alpha=0.75,
                           edgecolors="black", linewidths=0.5, label=label, zorder=z)  # fmt: skip
                xs.append(x)
                ys.append(y)
            if len(labels) > 1:  # a sweep: its variants joined in sweep order
                ax.plot(xs, ys, "-", color=model_color(base), linewidth=0.7, alpha=0.8,
                        zorder=1.5, label="_sweep")  # fmt: skip
        chance = chance_rate(records, averaged)
        if chance is not None:
            rate = chance / y_scale.divisor
            ax.axhline(rate, color="black", linestyle="--", linewidth=0.6, zorder=1,
                       label=CHANCE_LABEL)  # fmt: skip
        ax.set_xscale("log")
        ax.margins(0.2)  # bubbles are drawn whole, not cut at the frame
        if chance is not None:  # the y axis always shows where chance is
            low, high = ax.get_ylim()
            pad = 0.05 * (max(high, rate) - min(low, rate))
            ax.set_ylim(min(low, rate - pad), max(high, rate + pad))
        si_log_ticks(ax)
        x_text = header(x_figure, column_scale(x_figure, [1.0]))  # no prefix: the ticks have it
        if spread_drawn:
            x_text += "; bars: slowest to fastest sample"
        ax.set_xlabel(x_text)
        ax.set_ylabel(f"average {header(accuracy, y_scale)}, 95 % interval")
        ax.set_title(textwrap.fill(f"{suite} ({scale}), mean over {', '.join(averaged)}", 60))
        incomplete = "* averaged over fewer tasks" if (counts < len(tasks)).any() else None
        legend_outside(fig, ax, title=incomplete, markerscale=0.5)
        if memory is not None and memory.notna().any():
            top = float(memory.max())
            keys = [top / 4, top / 2, top]
            shown = si_scale(keys, runs.catalog.get(MEMORY_METRIC).unit)
            bubble_key(
                ax,
                [BUBBLE_MIN + (BUBBLE_MAX - BUBBLE_MIN) * k / top for k in keys],
                [f"{k / shown.divisor:.3g} {shown.unit}" for k in keys],
            )
        else:
            ax.text(0.99, 0.01, "no memory figure: equal bubbles", transform=ax.transAxes,
                    ha="right", fontsize=5)  # fmt: skip
        stem = f"accuracy_vs_{x_metric.removesuffix('_per_example')}_{suite}_{scale}"
        plots.append((stem, fig))
    return plots


def _bubble(memory: pd.Series | None, model: str) -> float:
    if memory is None or pd.isna(memory.get(model)):
        return BUBBLE_MIN
    top = float(memory.max())
    return BUBBLE_MIN + (BUBBLE_MAX - BUBBLE_MIN) * float(memory[model]) / top


@styled
def scaling(runs: Runs) -> list[Plot]:
    """Training steps/s and peak training memory against sequence length, one line per model
    and workload (mean over seeds); per (suite, scale). A line joins only tasks that are one
    workload at several lengths (`plot_parts.length_families`); the speed line carries a band
    from the slowest to the fastest stored sample."""
    series = [runs.catalog.get("train_steps_per_s"), runs.catalog.get(MEMORY_METRIC)]
    metrics = metrics_frame(runs.records).dropna(subset=["length"])
    styles = ["-", "--", ":", "-."]
    colors = plot_colors(runs.records)
    plots = []
    for (suite, scale), frame in metrics.groupby(["suite", "scale"], sort=False):
        present = [s for s in series if (frame.metric == s.name).any()]
        lengths = {t: int(n) for t, n in frame.groupby("task")["length"].first().items()}
        families = length_families(runs.tasks(suite), suite, runs.configs, lengths)
        if not present or not families:
            continue
        fig, axes = new_figure(len(present), 1, height=1.9 * len(present) + 0.5)
        for ax, figure in zip(axes[:, 0], present, strict=True):
            chosen = frame[frame.metric == figure.name]
            shown = column_scale(figure, list(chosen.value))
            factor = shown.divisor
            for index, family in enumerate(families):
                style = styles[index % len(styles)]
                for model in dict.fromkeys(chosen.model):
                    mine = chosen[(chosen.model == model) & chosen.task.isin(family)]
                    line = mine.groupby("length")["value"].mean()
                    if line.empty:
                        continue
                    name = model if len(families) == 1 else f"{model}, {family[0]}..."
                    color = colors[model]
                    ax.plot(line.index.astype(int), line.to_numpy() / factor, style,
                            marker="o", markersize=3, color=color, label=name)  # fmt: skip
                    band = [
                        _sample_range(runs, suite, scale, model, t, figure.name) for t in family
                    ]
                    band = [(lengths[t], b) for t, b in zip(family, band, strict=True) if b]
                    if band:
                        xs = [x for x, _ in band]
                        low = [b[0] / factor for _, b in band]
                        high = [b[1] / factor for _, b in band]
                        ax.fill_between(xs, low, high, color=color, alpha=0.2, linewidth=0)
            ax.set_yscale("log")
            si_log_ticks(ax, "y")
            ax.set_xlabel("sequence length (tokens)")
            label = header(figure, shown)
            if figure.samples:
                label += " (band: sample range)"
            ax.set_ylabel(label)
        shown_lengths = sorted({lengths[t] for family in families for t in family})
        span = f"lengths {shown_lengths[0]}-{shown_lengths[-1]}"
        tasks = ", ".join(t for family in families for t in family)
        axes[0, 0].set_title(textwrap.fill(f"{suite} ({scale}), {span}: {tasks}", 60))
        legend_outside(fig, axes[-1, 0])
        plots.append((f"scaling_{suite}_{scale}", fig))
    return plots


def _sample_range(
    runs: Runs, suite: str, scale: str, model: str, task: str, metric: str
) -> tuple[float, float] | None:
    cells = [
        r
        for r in runs.records
        if (r.suite, r.scale, model_label(r), r.task) == (suite, scale, model, task)
        and r.status == "ok"
    ]
    return _mean_range(cells, metric, runs)


def _mean_range(cells: list, metric: str, runs: Runs) -> tuple[float, float] | None:
    """(lowest, highest) of a timing over its stored samples, averaged over the cells; None when
    the figure keeps no samples."""
    ranges = [sampled_range(runs.catalog.get(metric), r.metrics) for r in cells]
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        return None
    return sum(r[0] for r in ranges) / len(ranges), sum(r[1] for r in ranges) / len(ranges)


def all_plots(runs: Runs) -> tuple[list[Plot], list[str]]:
    """Every plot the records support, and a one-line note for each kind left out."""
    kinds = (
        (
            "accuracy vs FLOPs",
            "flops_fwd_per_example with accuracy",
            lambda: accuracy_vs(runs, "flops_fwd_per_example"),
        ),
        (
            "accuracy vs speed",
            "train_steps_per_s with accuracy",
            lambda: accuracy_vs(runs, "train_steps_per_s"),
        ),
        (
            "accuracy vs throughput",
            "examples_per_s with accuracy",
            lambda: accuracy_vs(runs, "examples_per_s"),
        ),
        (
            "scaling with length",
            "train_steps_per_s or memory_peak_train_bytes of one workload at two lengths",
            lambda: scaling(runs),
        ),
        ("expert load", "routing tokens_per_expert", lambda: expert_load(runs)),
        ("training curves", "dev_curve", lambda: training_curves(runs)),
        (
            "equal-budget curves",
            "dev_curve_examples or dev_curve_train_s",
            lambda: budget_curves(runs),
        ),
        (
            "Pareto front",
            "accuracy and flops_fwd_per_example of two models",
            lambda: pareto_plot(runs),
        ),
    )
    plots: list[Plot] = []
    omitted = []
    for name, needs, build in kinds:
        made = build()
        plots += made
        if not made:
            omitted.append(f"{name} plot omitted: no ok record carries {needs}")
    from bench.report.plots_lm import lm_vs_flops  # language modelling (suites/lm) only

    return lm_vs_flops(runs) + plots, omitted
