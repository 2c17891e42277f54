"""Plots of what training did, from records: per-layer expert-load heatmaps of the MoE models and
training curves (loss and dev accuracy against the step, with the majority rate). One colour per
model (`bench.report.colors`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from bench.records import Record
from bench.report.colors import model_color
from bench.report.display import column_scale, header
from bench.report.frame import Runs, cells_frame, model_label
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import legend_outside


@styled
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
        fig, axes = new_figure(1, len(parts), height=2.2)
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


@styled
def training_curves(runs: Runs) -> list[Plot]:
    """Training loss (mean per eval interval) and dev accuracy against the step, one line per
    model (mean over the seeds whose curves share the steps); per (suite, scale, task)."""
    cells = cells_frame(runs.records)
    loss_metric, dev_metric = runs.catalog.get("loss_curve"), runs.catalog.get("dev_curve")
    dev_scale = column_scale(dev_metric, [])
    plots = []
    ok = [r for r in runs.records if r.status == "ok" and r.metrics.get("dev_curve")]
    for (suite, scale), _ in cells.groupby(["suite", "scale"], sort=False):
        for task in runs.tasks(suite):
            chosen = [r for r in ok if (r.suite, r.scale, r.task) == (suite, scale, task)]
            if not chosen:
                continue
            fig, axes = new_figure(2, 1, height=3.8)
            for model in dict.fromkeys(model_label(r) for r in chosen):
                steps, loss, dev = _mean_curves([r for r in chosen if model_label(r) == model])
                style = dict(color=model_color(model), label=model, marker="o", markersize=2.5)
                axes[0, 0].plot(steps, loss, **style)
                axes[1, 0].plot(steps, dev / dev_scale.divisor, **style)
            majority = [
                r.metrics["majority_accuracy"] for r in chosen if "majority_accuracy" in r.metrics
            ]
            if majority:  # what always answering the most frequent class scores
                rate = majority[0] / dev_scale.divisor
                axes[1, 0].axhline(rate, color="grey", linestyle=":", linewidth=0.8,
                                   label="majority rate (test)")  # fmt: skip
            for ax in axes[:, 0]:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes[0, 0].set_ylabel(loss_metric.label.removesuffix(" curve"))
            axes[1, 0].set_ylabel(header(dev_metric, dev_scale).replace(" curve", ""))
            axes[1, 0].set_xlabel("training step")
            note = _generators_note(chosen, label=task)
            axes[0, 0].set_title(textwrap.fill(f"{suite}/{task} ({scale}{note})", 50))
            legend_outside(fig, axes[1, 0])
            plots.append((f"curves_{suite}_{scale}_{task}", fig))
    return plots


def _generators_note(records: Sequence[Record], label: str) -> str:
    """The title's note naming the data generator(s) of the records (e.g. ", data generator lra"),
    or "" when none names one or the task's variant label already does
    (`pathfinder [data.generator=lra]`, bench.report.config_groups)."""
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
