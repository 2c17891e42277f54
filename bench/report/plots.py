"""Comparison plots from records, sized for one column of a paper and saved as PNG and PDF.

accuracy vs cost (FLOPs, speed) with bubble area = peak training memory; speed and memory vs
sequence length; per-layer expert-load heatmaps of MoE models; training curves. Each model keeps
one colour in every plot (`frame.model_colors`). Figures are built with the object API on the
Agg canvas (no pyplot, no global backend switch) and returned, so tests inspect the objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.records import Record
from bench.report.frame import Runs, cells_frame, metrics_frame, model_colors, model_label

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


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `stem`.png (200 dpi) and `stem`.pdf; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    with matplotlib.rc_context(STYLE):
        fig.savefig(paths[0], dpi=200)
        fig.savefig(paths[1])
    return paths


@_styled
def accuracy_vs(runs: Runs, x_metric: str, x_label: str, scale_x: float = 1.0) -> list[Plot]:
    """Average test accuracy (%) over tasks against `x_metric` (mean over the same tasks), one
    bubble per model sized by peak training memory; per (suite, scale) with both metrics."""
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
        n_tasks = len(runs.tasks(suite))
        points = both.groupby(level="model", sort=False).mean(numeric_only=True)
        counts = both.groupby(level="model", sort=False).size()
        memory = points.get("memory_peak_train_bytes")
        fig, axes = _figure()
        ax = axes[0, 0]
        for model, point in points.iterrows():
            size = _bubble(memory, model)
            label = model if counts[model] == n_tasks else f"{model}*"
            ax.scatter(
                point[x_metric] * scale_x,
                100 * point["accuracy"],
                s=size,
                color=colors[model],
                alpha=0.75,
                edgecolors="black",
                linewidths=0.5,
                label=label,
            )
        ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel("average test accuracy (%)")
        ax.set_title(f"{suite} ({scale})")
        bubbles = "peak train memory" if memory is not None else "none (no memory figure)"
        ax.text(
            0.99, 0.01, f"bubble area: {bubbles}", transform=ax.transAxes, ha="right", fontsize=5
        )
        ax.legend(loc="best", frameon=False, markerscale=0.5)
        if (counts < n_tasks).any():
            fig.text(0.01, 0.0, "* averaged over fewer tasks", fontsize=5)
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
    (mean over seeds and over tasks of the same length); per (suite, scale) with either."""
    series = [("train_steps_per_s", "training steps/s", 1.0)]
    series.append(("memory_peak_train_bytes", "peak train memory (MB)", 1e-6))
    metrics = metrics_frame(runs.records).dropna(subset=["length"])
    colors = model_colors(runs.palette_models())
    plots = []
    for (suite, scale), frame in metrics.groupby(["suite", "scale"], sort=False):
        present = [s for s in series if (frame.metric == s[0]).any()]
        if not present:
            continue
        fig, axes = _figure(len(present), 1, height=1.9 * len(present))
        for ax, (metric, label, factor) in zip(axes[:, 0], present, strict=True):
            chosen = frame[frame.metric == metric]
            for model in dict.fromkeys(chosen.model):
                line = chosen[chosen.model == model].groupby("length")["value"].mean()
                ax.plot(
                    line.index.astype(int),
                    line.to_numpy() * factor,
                    marker="o",
                    markersize=3,
                    color=colors[model],
                    label=model,
                )
            ax.set_yscale("log")
            ax.set_xlabel("sequence length (tokens)")
            ax.set_ylabel(label)
        axes[0, 0].set_title(f"{suite} ({scale})")
        axes[0, 0].legend(loc="best", frameon=False)
        plots.append((f"scaling_{suite}_{scale}", fig))
    return plots


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
        fig, axes = _figure(1, len(parts), height=2.0)
        for ax, part in zip(axes[0], parts, strict=True):
            rows = [
                layer[part]["tokens_per_expert"]
                for layer in record.routing
                if part in layer and "tokens_per_expert" in layer[part]
            ]
            load = np.asarray(rows, dtype=float)  # (layers, experts)
            means = load.mean(axis=1, keepdims=True)
            relative = np.divide(load, means, out=np.zeros_like(load), where=means > 0)
            image = ax.imshow(relative, cmap="viridis", vmin=0.0, aspect="auto")
            ax.set_xlabel("expert")
            ax.set_ylabel("layer")
            ax.set_xticks(range(load.shape[1]))
            ax.set_yticks(range(load.shape[0]))
            ax.set_title(f"{model} {part}: load / mean")
            fig.colorbar(image, ax=ax, shrink=0.8)
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
            fig, axes = _figure(2, 1, height=3.4)
            for model in dict.fromkeys(model_label(r) for r in chosen):
                steps, loss, dev = _mean_curves([r for r in chosen if model_label(r) == model])
                axes[0, 0].plot(steps, loss, color=colors[model], label=model)
                axes[1, 0].plot(steps, 100 * dev, color=colors[model], label=model)
            axes[0, 0].set_ylabel("training loss")
            axes[1, 0].set_ylabel("dev accuracy (%)")
            axes[1, 0].set_xlabel("training step")
            axes[0, 0].set_title(f"{suite}/{task} ({scale})")
            axes[0, 0].legend(loc="best", frameon=False)
            plots.append((f"curves_{suite}_{scale}_{task}", fig))
    return plots


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
            lambda: accuracy_vs(runs, "flops_fwd_per_example", "forward GFLOP per example", 1e-9),
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
            "train_steps_per_s or memory_peak_train_bytes",
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
