"""Plots of what training did, from records: per-layer expert-load heatmaps of the MoE models and
training curves (loss and dev accuracy against the step, with the majority rate). One colour per
model (`bench.report.colors`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import MaxNLocator

from bench.records import Record
from bench.report.display import column_scale, header
from bench.report.frame import Runs, cells_frame, model_label
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import legend_outside, plot_colors

LOAD_CMAP = "RdBu_r"  # diverging: white at 1 (balanced), blue under-used, red over-used


@styled
def expert_load(runs: Runs) -> list[Plot]:
    """Per-layer expert load (tokens per expert / mean over experts; 1 = balanced) of each MoE
    cell's last training batch, lowest seed; one panel per routed part (mixer, ffn). A diverging
    colormap centred at 1 (blue under-used, red over-used), the value written in each cell, the
    dropped fraction per layer beside its row. In a two-input task each layer's stats come once
    per encoder call (the rows are labelled `call 1`, `call 2` of a layer)."""
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
        calls = _encoder_calls(runs, record)
        fig, axes = new_figure(1, len(parts), height=2.6)
        relatives, dropped, labels = [], [], []
        for part in parts:
            layers = [
                layer[part]
                for layer in record.routing
                if "tokens_per_expert" in layer.get(part, {})
            ]
            load = np.asarray([s["tokens_per_expert"] for s in layers], dtype=float)  # (rows, E)
            means = load.mean(axis=1, keepdims=True)
            relatives.append(np.divide(load, means, out=np.zeros_like(load), where=means > 0))
            dropped.append([float(np.mean(s["dropped_fraction"])) if "dropped_fraction" in s
                            else None for s in layers])  # fmt: skip
            per_call = len(layers) // calls if calls > 1 and len(layers) % calls == 0 else 0
            labels.append(
                [f"{i % per_call} (call {i // per_call + 1})" for i in range(len(layers))]
                if per_call
                else [str(i) for i in range(len(layers))]
            )
        top = max(2.0, max(float(r.max()) for r in relatives))  # symmetric-ish scale around 1
        norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=top)
        for ax, part, relative, drop, names in zip(
            axes[0], parts, relatives, dropped, labels, strict=True
        ):
            image = ax.imshow(relative, cmap=LOAD_CMAP, norm=norm, aspect="auto")
            for (row, col), value in np.ndenumerate(relative):
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=4.5)
            ax.set_xlabel("expert")
            ax.set_ylabel("layer")
            ax.set_xticks(range(relative.shape[1]))
            ax.set_yticks(range(relative.shape[0]), names)
            if any(d is not None for d in drop):
                right = ax.secondary_yaxis("right")
                right.set_yticks(
                    range(len(drop)), [f"{d:.0%}" if d is not None else "-" for d in drop]
                )
                right.set_ylabel("dropped", fontsize=5)
            ax.set_title(textwrap.fill(f"{part}: load / mean", 28))
        fig.suptitle(
            textwrap.fill(
                f"{model} on {suite}/{task} ({scale}): last training batch of seed {record.seed}",
                60,
            ),
            fontsize=7,
        )
        bar = fig.colorbar(image, ax=list(axes[0]), location="bottom", shrink=0.8, aspect=30)
        bar.set_label("tokens routed to the expert / mean over experts (1 = balanced)")
        plots.append((f"expert_load_{suite}_{scale}_{task}_{model}", fig))
    return plots


def _encoder_calls(runs: Runs, record: Record) -> int:
    """How many encoder calls a forward made: the routing rows over the model's depth (a
    dual-encoder task stacks its two calls' layers, first call first); 1 when unknown."""
    depth = record.config.get("model", {}).get("depth") if isinstance(record.config, dict) else None
    rows = len(record.routing)
    if not isinstance(depth, int) or depth < 1 or rows % depth:
        return 1
    return rows // depth


@styled
def training_curves(runs: Runs) -> list[Plot]:
    """Training loss (the finely logged `train_loss_curve`, else the mean per eval interval) and
    dev accuracy against the step, one curve per model (mean over the seeds whose curves share
    the steps; `curve_plot`: points, never two points joined); per (suite, scale, task)."""
    cells = cells_frame(runs.records)
    loss_metric, dev_metric = runs.catalog.get("loss_curve"), runs.catalog.get("dev_curve")
    dev_scale = column_scale(dev_metric, [])
    colors = plot_colors(runs.records)
    plots = []
    ok = [r for r in runs.records if r.status == "ok" and r.metrics.get("dev_curve")]
    for (suite, scale), _ in cells.groupby(["suite", "scale"], sort=False):
        for task in runs.tasks(suite):
            chosen = [r for r in ok if (r.suite, r.scale, r.task) == (suite, scale, task)]
            if not chosen:
                continue
            fig, axes = new_figure(2, 1, height=3.8)
            for model in dict.fromkeys(model_label(r) for r in chosen):
                mine = [r for r in chosen if model_label(r) == model]
                steps, loss, dev = _mean_curves(mine)
                logged = _mean_logged_loss(mine)
                if logged is not None:  # the finely logged loss, else the per-eval-interval mean
                    steps_loss, loss = logged
                else:
                    steps_loss = steps
                curve_plot(axes[0, 0], steps_loss, loss, color=colors[model], label=model)
                curve_plot(axes[1, 0], steps, dev / dev_scale.divisor, color=colors[model],
                           label=model)  # fmt: skip
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


FEW_POINTS = 3  # a curve of fewer points is drawn as points, never joined as if a curve
MARKED_POINTS = 30  # up to this many points each point is marked


def curve_plot(ax, x, y, *, color: str, label: str) -> None:
    """A curve as a reader can trust it: markers only below FEW_POINTS points, line and markers
    up to MARKED_POINTS, a plain line beyond."""
    n = len(x)
    line = "" if n < FEW_POINTS else "-"
    marker = "o" if n <= MARKED_POINTS else ""
    ax.plot(x, y, linestyle=line or "none", marker=marker or None, markersize=2.5, color=color,
            label=label)  # fmt: skip


def _mean_logged_loss(records: Sequence[Record]) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps and the logged training loss (`train_loss_curve`) averaged over the records whose
    steps equal the first's; None when the first record has no such curve."""
    first = records[0].metrics.get("train_loss_curve")
    if not first:
        return None
    steps = [p[0] for p in first]
    same = [r for r in records if [p[0] for p in r.metrics.get("train_loss_curve", [])] == steps]
    loss = np.mean([[p[1] for p in r.metrics["train_loss_curve"]] for r in same], axis=0)
    return np.asarray(steps), loss
