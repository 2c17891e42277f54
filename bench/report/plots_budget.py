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
from bench.report.plot_parts import (
    CHANCE_LABEL,
    VARIANT_MARKERS,
    chance_rate,
    legend_outside,
    plot_colors,
    si_log_ticks,
    sweep_families,
)
from bench.report.plots_training import curve_plot


@styled
def budget_curves(runs: Runs) -> list[Plot]:
    """Per (suite, scale, task) with curves: two panels, FLOPs and seconds on the x axis."""
    plots = []
    colors = plot_colors(runs.records)
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
                           color=colors[model], label=label)  # fmt: skip
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
    """Per (suite, scale): accuracy [95 % interval] against forward FLOPs (log axis in FLOP, each
    decade labelled), the front of the means as a staircase to the right edge, the chance level
    (majority-class rate, mean over the tasks) as a labelled line inside the y axis; a model's
    sweep variants share its hue (shades in sweep order), are joined in sweep order and take
    distinct markers, the smaller drawn on top."""
    plots = []
    colors = plot_colors(runs.records)
    for (suite, scale), (tasks, points) in front_groups(runs).items():
        fig, axes = new_figure(height=2.8)
        ax = axes[0, 0]
        by_label = {p.model: p for p in points}
        # P labels alternate above and below in cost order, so neighbours' labels never overlap
        cost_rank = {p.model: i for i, p in enumerate(sorted(points, key=lambda p: p.cost))}
        records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale)]
        families = sweep_families([r for r in records if model_label(r) in by_label])
        for base, labels in families.items():
            for index, label in enumerate(labels):
                p = by_label[label]
                x, y = p.cost, 100 * p.accuracy
                marker = VARIANT_MARKERS[index % len(VARIANT_MARKERS)] if len(labels) > 1 else "o"
                size = 4.0 - 2.0 * index / max(len(labels) - 1, 1)  # later variants smaller...
                ax.errorbar(x, y, yerr=[[y - 100 * p.low], [100 * p.high - y]], fmt=marker,
                            color=colors[label], markersize=size, capsize=2,
                            markeredgecolor="black", markeredgewidth=0.3,
                            zorder=2 + index, label=label)  # ...and on top  # fmt: skip
                below = cost_rank[label] % 2 == 1
                ax.annotate(f"P={p.probability:.2f}", (x, y), textcoords="offset points",
                            xytext=(4, -4 if below else 4), va="top" if below else "bottom",
                            fontsize=5)  # fmt: skip
            if len(labels) > 1:
                ax.plot([by_label[label].cost for label in labels],
                        [100 * by_label[label].accuracy for label in labels], "-",
                        color=model_color(base), linewidth=0.7, alpha=0.8, zorder=1.5,
                        label="_sweep")  # fmt: skip
        chance = chance_rate(records, tasks)
        if chance is not None:
            ax.axhline(100 * chance, color="black", linestyle="--", linewidth=0.6, zorder=1,
                       label=CHANCE_LABEL)  # fmt: skip
        ax.set_xscale("log")
        ax.margins(0.15)
        if chance is not None:  # the y axis always shows where chance is
            low, high = ax.get_ylim()
            pad = 0.05 * (max(high, 100 * chance) - min(low, 100 * chance))
            ax.set_ylim(min(low, 100 * chance - pad), max(high, 100 * chance + pad))
        front = sorted((p for p in points if p.on_front), key=lambda p: p.cost)
        right = ax.get_xlim()[1]  # the front holds to the right of its last point
        ax.step([p.cost for p in front] + [right], [100 * p.accuracy for p in front]
                + [100 * front[-1].accuracy], where="post", color="grey", linewidth=0.8,
                zorder=1.2, label="front (means)")  # fmt: skip
        ax.set_xlim(right=right)
        si_log_ticks(ax)
        ax.set_xlabel("forward FLOPs per example (FLOP)")
        ax.set_ylabel("test accuracy (%), 95 % interval")
        ax.set_title(textwrap.fill(
            f"Pareto front, {suite} ({scale}), mean over {', '.join(tasks)}; P = P(on front)", 60
        ))  # fmt: skip
        legend_outside(fig, ax)
        plots.append((f"pareto_{suite}_{scale}", fig))
    return plots
