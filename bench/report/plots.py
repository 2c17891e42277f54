"""Comparison plots from records, sized for one column of a paper and saved as PNG and PDF.

accuracy vs cost (FLOPs, speed) with bubble area = peak training memory; speed and memory vs
sequence length; per-layer expert-load heatmaps of MoE models; training curves. Each model keeps
one colour in every plot (`frame.model_colors`). Figures are built with the object API on the
Agg canvas (no pyplot, no global backend switch) and returned, so tests inspect the objects.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bench.records import Record
from bench.report.frame import Runs, cells_frame, metrics_frame, model_colors, model_label
from bench.report.plot_parts import (
    bubble_key,
    legend_outside,
    length_families,
    plain_log_ticks,
    rate_range,
    si_prefix,
)
from suites.cache import write_atomic

COLUMN_WIDTH_IN = 3.4  # one column of a two-column paper
STYLE = {"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6, "lines.linewidth": 1.2}
BUBBLE_MIN, BUBBLE_MAX = 20.0, 220.0  # marker areas (pt^2) of the smallest and largest memory

Plot = tuple[str, Figure]  # (file stem, figure)


def _styled(build: Callable[..., list[Plot]]) -> Callable[..., list[Plot]]:
    """Build the figures under STYLE: text sizes are fixed when each artist is created."""

    @functools.wraps(build)
    def styled(*args, **kwargs) -> list[Plot]:
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return styled


def _figure(rows: int = 1, cols: int = 1, height: float = 2.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(COLUMN_WIDTH_IN, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def file_stem(name: str) -> str:
    """A plot name as a shell-friendly file stem: a variant label's brackets become "_" and
    other characters outside [A-Za-z0-9._-] a "-" ("curves_lra_small_pathfinder
    [data.generator=intended]" -> "curves_lra_small_pathfinder_data.generator-intended")."""
    stem = re.sub(r"\s*\[([^\]]*)\]", r"_\1", name)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-")


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `file_stem(stem)`.png (200 dpi) and .pdf, each atomically (a kill never leaves a
    truncated plot); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(stem)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    with matplotlib.rc_context(STYLE):
        write_atomic(paths[0], lambda f: fig.savefig(f, format="png", dpi=200))
        write_atomic(paths[1], lambda f: fig.savefig(f, format="pdf"))
    return paths


@_styled
def accuracy_vs(runs: Runs, x_metric: str, x_label: str, unit: str = "") -> list[Plot]:
    """Average test accuracy (%) over tasks against `x_metric` (mean over the same tasks), one
    bubble per model sized by peak training memory; per (suite, scale) with both metrics. The x
    axis takes the SI prefix of `unit` that fits its values; a rate with stored samples gets
    error bars from its slowest to its fastest sample. Legend and bubble key sit outside."""
    metrics = metrics_frame(runs.records)
    colors = model_colors(runs.palette_models())
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
        memory = points.get("memory_peak_train_bytes")
        factor, prefixed = si_prefix(list(points[x_metric]), unit) if unit else (1.0, "")
        fig, axes = _figure(height=2.8)
        ax = axes[0, 0]
        spread_drawn = False
        for model, point in points.iterrows():
            label = model if counts[model] == len(tasks) else f"{model}*"
            x, y = point[x_metric] / factor, 100 * point["accuracy"]
            cells = [
                r
                for r in runs.records
                if (r.suite, r.scale, r.model) == (suite, scale, model) and r.status == "ok"
            ]
            spread = rate_range(cells, x_metric)
            if spread is not None:
                low, high = spread[0] / factor, spread[1] / factor
                xerr = [[max(x - low, 0.0)], [max(high - x, 0.0)]]
                ax.errorbar(x, y, xerr=xerr, fmt="none", ecolor=colors[model], elinewidth=0.6)
                spread_drawn = True
            ax.scatter(
                x,
                y,
                s=_bubble(memory, model),
                color=colors[model],
                alpha=0.75,
                edgecolors="black",
                linewidths=0.5,
                label=label,
            )
        ax.set_xscale("log")
        ax.margins(0.2)  # bubbles are drawn whole, not cut at the frame
        plain_log_ticks(ax)
        x_text = f"{x_label} ({prefixed})" if prefixed else x_label
        if spread_drawn:
            x_text += "; bars: slowest to fastest sample"
        ax.set_xlabel(x_text)
        ax.set_ylabel("average test accuracy (%)")
        ax.set_title(textwrap.fill(f"{suite} ({scale}), mean over {', '.join(averaged)}", 60))
        incomplete = "* averaged over fewer tasks" if (counts < len(tasks)).any() else None
        legend_outside(fig, ax, title=incomplete, markerscale=0.5)
        if memory is not None and memory.notna().any():
            top = float(memory.max())
            keys = [top / 4, top / 2, top]
            mb, mb_unit = si_prefix(keys, "B")
            bubble_key(
                ax,
                [BUBBLE_MIN + (BUBBLE_MAX - BUBBLE_MIN) * k / top for k in keys],
                [f"{k / mb:.3g} {mb_unit}" for k in keys],
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


@_styled
def scaling(runs: Runs) -> list[Plot]:
    """Training steps/s and peak training memory against sequence length, one line per model
    and workload (mean over seeds); per (suite, scale). A line joins only tasks that are one
    workload at several lengths (`plot_parts.length_families`); the speed line carries a band
    from the slowest to the fastest stored sample."""
    series = [("train_steps_per_s", "training steps/s (band: sample range)", "")]
    series.append(("memory_peak_train_bytes", "peak train memory", "B"))
    metrics = metrics_frame(runs.records).dropna(subset=["length"])
    colors = model_colors(runs.palette_models())
    styles = ["-", "--", ":", "-."]
    plots = []
    for (suite, scale), frame in metrics.groupby(["suite", "scale"], sort=False):
        present = [s for s in series if (frame.metric == s[0]).any()]
        lengths = {t: int(n) for t, n in frame.groupby("task")["length"].first().items()}
        families = length_families(runs.tasks(suite), suite, runs.configs, lengths)
        if not present or not families:
            continue
        fig, axes = _figure(len(present), 1, height=1.9 * len(present) + 0.5)
        for ax, (metric, label, unit) in zip(axes[:, 0], present, strict=True):
            chosen = frame[frame.metric == metric]
            factor, prefixed = si_prefix(list(chosen.value), unit) if unit else (1.0, "")
            for index, family in enumerate(families):
                style = styles[index % len(styles)]
                for model in dict.fromkeys(chosen.model):
                    mine = chosen[(chosen.model == model) & chosen.task.isin(family)]
                    line = mine.groupby("length")["value"].mean()
                    if line.empty:
                        continue
                    name = model if len(families) == 1 else f"{model}, {family[0]}..."
                    ax.plot(line.index.astype(int), line.to_numpy() / factor, style,
                            marker="o", markersize=3, color=colors[model], label=name)  # fmt: skip
                    band = [_sample_range(runs, suite, scale, model, t, metric) for t in family]
                    band = [(lengths[t], b) for t, b in zip(family, band, strict=True) if b]
                    if band:
                        xs = [x for x, _ in band]
                        ax.fill_between(xs, [b[0] for _, b in band], [b[1] for _, b in band],
                                        color=colors[model], alpha=0.2, linewidth=0)  # fmt: skip
            ax.set_yscale("log")
            plain_log_ticks(ax, "y")
            ax.set_xlabel("sequence length (tokens)")
            ax.set_ylabel(f"{label} ({prefixed})" if prefixed else label)
        tasks = ", ".join(t for family in families for t in family)
        axes[0, 0].set_title(textwrap.fill(f"{suite} ({scale}): {tasks}", 60))
        legend_outside(fig, axes[-1, 0])
        plots.append((f"scaling_{suite}_{scale}", fig))
    return plots


def _sample_range(
    runs: Runs, suite: str, scale: str, model: str, task: str, metric: str
) -> tuple[float, float] | None:
    cells = [
        r
        for r in runs.records
        if (r.suite, r.scale, r.model, r.task) == (suite, scale, model, task) and r.status == "ok"
    ]
    return rate_range(cells, metric)


@_styled
def expert_load(runs: Runs) -> list[Plot]:
    """Per-layer expert load (tokens per expert / mean over experts; 1 = balanced) of each MoE
    cell, lowest seed; one panel per routed part (mixer, ffn)."""
    plots = []
    first: dict[tuple, Record] = {}
    for r in sorted(runs.records, key=lambda r: r.seed):
        if r.status == "ok" and r.routing:
            first.setdefault((r.suite, r.scale, r.task, model_label(r)), r)
    for (suite, scale, task, model), record in first.items():
        parts = list(
            dict.fromkeys(
                part
                for layer in record.routing
                for part, stats in layer.items()
                if "tokens_per_expert" in stats
            )
        )
        if not parts:
            continue
        fig, axes = _figure(1, len(parts), height=2.2)
        relatives = []
        for part in parts:
            rows = [
                layer[part]["tokens_per_expert"]
                for layer in record.routing
                if part in layer and "tokens_per_expert" in layer[part]
            ]
            load = np.asarray(rows, dtype=float)  # (layers, experts)
            means = load.mean(axis=1, keepdims=True)
            relatives.append(np.divide(load, means, out=np.zeros_like(load), where=means > 0))
        top = max(float(r.max()) for r in relatives)  # one colour scale for the whole figure
        for ax, part, relative in zip(axes[0], parts, relatives, strict=True):
            image = ax.imshow(relative, cmap="viridis", vmin=0.0, vmax=top, aspect="auto")
            ax.set_xlabel("expert")
            ax.set_ylabel("layer")
            ax.set_xticks(range(relative.shape[1]))
            ax.set_yticks(range(relative.shape[0]))
            ax.set_title(f"{model} {part}: load / mean")
        fig.suptitle(f"{model} on {suite}/{task} ({scale}), seed {record.seed}", fontsize=7)
        bar = fig.colorbar(image, ax=list(axes[0]), location="bottom", shrink=0.8, aspect=30)
        bar.set_label("tokens routed to the expert / mean over experts (1 = balanced)")
        plots.append((f"expert_load_{suite}_{scale}_{task}_{model}", fig))
    return plots


@_styled
def training_curves(runs: Runs) -> list[Plot]:
    """Training loss (mean per eval interval) and dev accuracy against the step, one line per
    model (mean over the seeds whose curves share the steps); per (suite, scale, task)."""
    cells = cells_frame(runs.records)
    colors = model_colors(runs.palette_models())
    plots = []
    ok = [r for r in runs.records if r.status == "ok" and r.metrics.get("dev_curve")]
    for (suite, scale), _ in cells.groupby(["suite", "scale"], sort=False):
        for task in runs.tasks(suite):
            chosen = [r for r in ok if (r.suite, r.scale, r.task) == (suite, scale, task)]
            if not chosen:
                continue
            fig, axes = _figure(2, 1, height=3.8)
            for model in dict.fromkeys(model_label(r) for r in chosen):
                steps, loss, dev = _mean_curves([r for r in chosen if model_label(r) == model])
                style = dict(color=colors[model], label=model, marker="o", markersize=2.5)
                axes[0, 0].plot(steps, loss, **style)
                axes[1, 0].plot(steps, 100 * dev, **style)
            majority = [
                r.metrics["majority_accuracy"] for r in chosen if "majority_accuracy" in r.metrics
            ]
            if majority:  # what always answering the most frequent class scores
                axes[1, 0].axhline(100 * majority[0], color="grey", linestyle=":", linewidth=0.8,
                                   label="majority rate (test)")  # fmt: skip
            for ax in axes[:, 0]:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes[0, 0].set_ylabel("training loss")
            axes[1, 0].set_ylabel("dev accuracy (%)")
            axes[1, 0].set_xlabel("training step")
            note = _generators_note(chosen, label=task)
            axes[0, 0].set_title(textwrap.fill(f"{suite}/{task} ({scale}{note})", 50))
            legend_outside(fig, axes[1, 0])
            plots.append((f"curves_{suite}_{scale}_{task}", fig))
    return plots


def _generators_note(records: Sequence[Record], label: str) -> str:
    """The title's note naming the data generator(s) of the records (e.g. ", data generator lra"),
    or "" when none names one or the task's variant label already does
    (`pathfinder [data.generator=lra]`, bench.report.variants)."""
    names = dict.fromkeys(r.data["generator"] for r in records if r.data.get("generator"))
    unstated = [n for n in names if f"data.generator={n}" not in label]
    return f", data generator {', '.join(unstated)}" if unstated else ""


def _mean_curves(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, loss and dev accuracy averaged over the records whose steps equal the first's."""
    steps = [p[0] for p in records[0].metrics["dev_curve"]]
    same = [r for r in records if [p[0] for p in r.metrics["dev_curve"]] == steps]
    loss = np.mean([r.metrics["loss_curve"] for r in same], axis=0)
    dev = np.mean([[p[1] for p in r.metrics["dev_curve"]] for r in same], axis=0)
    return np.asarray(steps), loss, dev


def all_plots(runs: Runs) -> tuple[list[Plot], list[str]]:
    """Every plot the records support, and a one-line note for each kind left out."""
    kinds = (
        (
            "accuracy vs FLOPs",
            "flops_fwd_per_example with accuracy",
            lambda: accuracy_vs(runs, "flops_fwd_per_example", "forward FLOPs per example", "FLOP"),
        ),
        (
            "accuracy vs speed",
            "train_steps_per_s with accuracy",
            lambda: accuracy_vs(runs, "train_steps_per_s", "training steps/s"),
        ),
        (
            "accuracy vs throughput",
            "examples_per_s with accuracy",
            lambda: accuracy_vs(runs, "examples_per_s", "training examples/s (whole run)"),
        ),
        (
            "scaling with length",
            "train_steps_per_s or memory_peak_train_bytes of one workload at two lengths",
            lambda: scaling(runs),
        ),
        ("expert load", "routing tokens_per_expert", lambda: expert_load(runs)),
        ("training curves", "dev_curve", lambda: training_curves(runs)),
    )
    plots: list[Plot] = []
    omitted = []
    for name, needs, build in kinds:
        made = build()
        plots += made
        if not made:
            omitted.append(f"{name} plot omitted: no ok record carries {needs}")
    return plots, omitted
