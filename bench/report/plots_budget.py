"""Plots of the equal-budget view (dev accuracy against cumulative training FLOPs and against
training-step wall time, one curve per seed, dotted lines at the budgets of the tables in
`bench.report.budget`) and of the Pareto front (`bench.report.pareto`): accuracy with its 95 %
interval against forward FLOPs, the front joined, each model labelled with P(front)."""

from __future__ import annotations

import textwrap

from bench.report.budget import AXES, AXIS_LABEL, AXIS_UNIT, budget_curve, common_budgets
from bench.report.colors import model_color
from bench.report.display import si_scale
from bench.report.frame import Runs, model_label
from bench.report.pareto import front_groups
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import legend_outside, plain_log_ticks
from bench.report.plots_training import curve_plot


@styled
def budget_curves(runs: Runs) -> list[Plot]:
    """Per (suite, scale, task) with curves: two panels, FLOPs and seconds on the x axis."""
    plots = []
    ok = [r for r in runs.records if r.status == "ok" and r.metrics.get("dev_curve")]
    for suite, scale, task in dict.fromkeys((r.suite, r.scale, r.task) for r in ok):
        chosen = [r for r in ok if (r.suite, r.scale, r.task) == (suite, scale, task)]
        if all(budget_curve(r, a) is None for r in chosen for a in AXES):
            continue
        fig, axes = new_figure(2, 1, height=4.0)
        for ax, axis in zip(axes[:, 0], AXES, strict=True):
            curves = [(r, budget_curve(r, axis)) for r in chosen]
            curves = [(r, c) for r, c in curves if c is not None]
            if not curves:
                continue
            shown = si_scale([float(c.budget[-1]) for _, c in curves], AXIS_UNIT[axis])
            labelled = set()
            for r, c in curves:
                model = model_label(r)
                label = model if model not in labelled else "_"
                labelled.add(model)
                curve_plot(ax, c.budget / shown.divisor, 100 * c.accuracy,
                           color=model_color(model), label=label)  # fmt: skip
            for budget in common_budgets([c for _, c in curves]):
                ax.axvline(budget / shown.divisor, color="grey", linestyle=":", linewidth=0.6)
            majority = [
                r.metrics["majority_accuracy"] for r in chosen if "majority_accuracy" in r.metrics
            ]
            if majority:
                ax.axhline(100 * majority[0], color="black", linestyle="--", linewidth=0.6,
                           label="chance (majority rate, test)")  # fmt: skip
            ax.set_xlabel(f"{AXIS_LABEL[axis]} ({shown.unit})")
            ax.set_ylabel("dev accuracy (%)")
        axes[0, 0].set_title(
            textwrap.fill(
                f"{suite}/{task} ({scale}): one curve per seed; dotted: table budgets", 60
            )
        )
        legend_outside(fig, axes[1, 0])
        plots.append((f"budget_{suite}_{scale}_{task}", fig))
    return plots


@styled
def pareto_plot(runs: Runs) -> list[Plot]:
    """Per (suite, scale): accuracy [95 % interval] against forward FLOPs, front joined."""
    plots = []
    for (suite, scale), (tasks, points) in front_groups(runs).items():
        fig, axes = new_figure(height=2.8)
        ax = axes[0, 0]
        shown = si_scale([p.cost for p in points], "FLOP")
        for p in points:
            x, y = p.cost / shown.divisor, 100 * p.accuracy
            ax.errorbar(x, y, yerr=[[y - 100 * p.low], [100 * p.high - y]], fmt="o",
                        color=model_color(p.model), markersize=4, capsize=2,
                        label=p.model)  # fmt: skip
            ax.annotate(f"P={p.probability:.2f}", (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=5)  # fmt: skip
        front = sorted((p for p in points if p.on_front), key=lambda p: p.cost)
        ax.step([p.cost / shown.divisor for p in front], [100 * p.accuracy for p in front],
                where="post", color="grey", linewidth=0.8, label="front (means)")  # fmt: skip
        ax.set_xscale("log")
        ax.margins(0.15)
        plain_log_ticks(ax)
        ax.set_xlabel(f"forward FLOPs per example ({shown.unit})")
        ax.set_ylabel("test accuracy (%), 95 % interval")
        ax.set_title(textwrap.fill(
            f"Pareto front, {suite} ({scale}), mean over {', '.join(tasks)}; P = P(on front)", 60
        ))  # fmt: skip
        legend_outside(fig, ax)
        plots.append((f"pareto_{suite}_{scale}", fig))
    return plots
