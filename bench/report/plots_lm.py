"""The language-modelling plot: each model's test figure (bits per byte or perplexity, lower is
better) against its forward FLOPs per token, one point per model (mean over seeds), per (suite,
scale, task). A model the causality probe caught leaking is drawn hollow with an `×`, labelled
"(leaks: not comparable)" in the legend, and said so under the axes: its figure was scored with
later tokens in view, so the plot never lets it pass for the best.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from statistics import mean

from bench.records import Record
from bench.report.colors import model_color
from bench.report.display import column_scale, header
from bench.report.frame import Runs, model_label
from bench.report.lm_tables import HEADLINES
from bench.report.plot_figure import Plot, new_figure, styled
from bench.report.plot_parts import legend_outside, si_log_ticks

FLOPS = "flops_fwd_per_token"
LEAK_LABEL = " (leaks: not comparable)"


@styled
def lm_vs_flops(runs: Runs) -> list[Plot]:
    groups: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    for r in runs.records:
        headline = next((h for h in HEADLINES if h in r.metrics), None)
        if r.status == "ok" and headline and FLOPS in r.metrics:
            groups[(r.suite, r.scale, r.task)].append(r)
    if not groups:  # no LM records: the catalog may lack the LM figures
        return []
    x_figure = runs.catalog.get(FLOPS)
    plots = []
    for (suite, scale, task), records in groups.items():
        headline = next(h for h in HEADLINES if h in records[0].metrics)
        y_figure = runs.catalog.get(headline)
        by_model: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_model[model_label(r)].append(r)
        fig, axes = new_figure(height=2.6)
        ax = axes[0, 0]
        any_leak = False
        for model, mine in by_model.items():
            x = mean(r.metrics[FLOPS] for r in mine)
            y = mean(r.metrics[headline] for r in mine if headline in r.metrics)
            leaks = any(r.metrics.get("causal_leak") for r in mine)
            any_leak |= leaks
            color = model_color(model)
            if leaks:
                ax.scatter([x], [y], s=40, facecolors="none", edgecolors=color, linewidths=1.0,
                           label=model + LEAK_LABEL, zorder=2)  # fmt: skip
                ax.scatter([x], [y], s=18, marker="x", color=color, linewidths=0.8, zorder=3)
            else:
                ax.scatter([x], [y], s=30, color=color, label=model, zorder=3)
        ax.set_xscale("log")
        ax.margins(0.15)
        si_log_ticks(ax)
        ax.set_xlabel(header(x_figure, column_scale(x_figure, [1.0])))
        ax.set_ylabel(f"{header(y_figure, column_scale(y_figure, []))} (lower is better)")
        ax.set_title(textwrap.fill(f"{suite}/{task} ({scale}), mean over seeds", 60))
        if any_leak:
            ax.text(0.99, 0.01, "hollow ×: leaks the future (causality probe), not ranked",
                    transform=ax.transAxes, ha="right", fontsize=5)  # fmt: skip
        legend_outside(fig, ax, ncols=2)
        plots.append((f"lm_{headline.removeprefix('test_')}_vs_flops_{suite}_{task}_{scale}", fig))
    return plots
