"""Pieces the plots share so that none of them misleads: which tasks are one workload at several
lengths (the only ones a scaling line may join), a legend and footnotes outside the axes, a
bubble-size key and plain log ticks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.records import Record
from bench.report.colors import family_colors
from bench.report.frame import model_label
from bench.report.plot_figure import LayoutLegend


def length_families(
    tasks: Sequence[str],
    suite: str,
    configs: Mapping[tuple[str, str], Mapping[str, Any]],
    lengths: Mapping[str, int],
) -> list[list[str]]:
    """Groups of tasks that are one workload at several lengths: their resolved configs agree on
    everything but `data.max_len` and their lengths differ. Only such groups of two or more may
    be joined by a line against length (ListOps at 128 and Pathfinder at 1024 are two tasks,
    not one curve)."""
    groups: dict[str, list[str]] = {}
    for task in tasks:
        if task not in lengths:
            continue
        config = {k: v for k, v in configs.get((suite, task), {}).items() if k != "data.max_len"}
        groups.setdefault(repr(sorted(config.items())), []).append(task)
    families = []
    for members in groups.values():
        if len({lengths[t] for t in members}) == len(members) >= 2:
            families.append(sorted(members, key=lambda t: lengths[t]))
    return families


def legend_outside(
    fig: Figure, ax: Axes, title: str | None = None, ncols: int = 3, markerscale: float = 1.0
) -> None:
    """The axes' legend below the plot, outside the data (constrained layout makes room); at
    most `ncols` columns, fewer when long labels would make it wider than the column."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        longest = max(len(label) for label in labels)
        ncols = max(1, min(ncols, LEGEND_ROW_CHARS // (longest + 6)))  # 6: handle and gap
        legend = LayoutLegend(
            fig,
            handles,
            labels,
            loc="outside lower center",
            ncols=min(ncols, len(handles)),
            frameon=False,
            title=title,
            title_fontsize=6,
            markerscale=markerscale,
            bbox_transform=fig.transSubfigure,
        )
        fig.legends.append(legend)  # what Figure.legend does, with the layout-aware class


def bubble_key(ax: Axes, sizes_pt2: Sequence[float], labels: Sequence[str]) -> None:
    """A key of bubble areas at the right of the axes, outside the data."""
    handles = [  # legend-only artists: the axes' data holds the models' bubbles alone
        Line2D([], [], marker="o", linestyle="", markersize=float(np.sqrt(s)),
               markerfacecolor="none", markeredgecolor="grey", markeredgewidth=0.5)
        for s in sizes_pt2
    ]  # fmt: skip
    ax.legend(
        handles,
        labels,
        title="peak train memory",
        title_fontsize=5,
        fontsize=5,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        frameon=False,
        labelspacing=1.2,
        borderaxespad=0.0,
    )


VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X")  # one per sweep variant of a model
CHANCE_LABEL = "chance (majority-class rate, test)"


def chance_rate(records: list[Record], tasks: list[str]) -> float | None:
    """The majority-class rate of the test split (what the accuracy table's chance mark tests
    against), averaged over `tasks`; None when a task's records do not carry it."""
    rates = []
    for task in tasks:
        found = [
            r.metrics["majority_accuracy"]
            for r in records
            if r.task == task and r.status == "ok" and "majority_accuracy" in r.metrics
        ]
        if not found:
            return None
        rates.append(float(np.mean(found)))
    return float(np.mean(rates)) if rates else None


LEGEND_ROW_CHARS = 66  # characters of legend text one column-wide figure holds in a row


SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
# finer and finer multiples of a decade to label when the axis spans less than one decade
FINER_SUBS = (
    (2.0, 5.0),
    (2.0, 3.0, 5.0),
    tuple(float(m) for m in range(2, 10)),
    tuple(float(m) for m in np.arange(1.5, 10.0, 0.5)),
    tuple(float(m) for m in np.arange(1.2, 10.0, 0.2).round(1)),
    tuple(float(m) for m in np.arange(1.1, 10.0, 0.1).round(1)),
)


def si_number(value: float) -> str:
    """A tick value with an SI prefix from a thousand up (1k, 2.5k, 10M, 1G), plain below
    (0.05, 2, 500)."""
    for factor, prefix in SI_PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}"
    return f"{value:.3g}"


def si_log_ticks(ax: Axes, axis: str = "x") -> None:
    """Label a log axis at every decade inside its limits (100, 1k, 10k, 1M: `si_number`), and,
    when fewer than two decades fall inside, also the first of FINER_SUBS that gives at least
    three labels in all; the other minor ticks stay unlabelled (call after the data and margins
    are set: the choice reads the limits)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    if low <= 0:
        raise ValueError(f"si_log_ticks needs a positive log axis, got limits {low}, {high}")
    decades = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)

    def inside(subs: tuple[float, ...]) -> int:
        return sum(low <= m * 10**d <= high for d in decades for m in subs)

    formatter = FuncFormatter(lambda v, _: si_number(v))
    target.set_major_locator(LogLocator(base=10, subs=(1.0,), numticks=len(decades) + 2))
    target.set_major_formatter(formatter)
    labelled = None
    if inside((1.0,)) < 2:
        labelled = next((s for s in FINER_SUBS if inside((1.0,)) + inside(s) >= 3), FINER_SUBS[-1])
    if labelled is None:
        target.set_minor_locator(LogLocator(base=10, subs=FINER_SUBS[1], numticks=99))
        target.set_minor_formatter(NullFormatter())
    else:
        target.set_minor_locator(LogLocator(base=10, subs=labelled, numticks=99))
        target.set_minor_formatter(formatter)


def sweep_families(records: Sequence[Record]) -> dict[str, list[str]]:
    """Base model -> its labels (`frame.model_label`) in sweep order: the plain model first,
    then its variants sorted by their swept values (numbers as numbers), in first-appearance
    order of the base models."""
    found: dict[str, dict[str, tuple]] = {}
    for r in records:
        values = tuple(
            (0, v, "") if isinstance(v, int | float) else (1, 0, str(v))
            for _, v in sorted(r.variant_values.items())
        )
        found.setdefault(r.model, {}).setdefault(model_label(r), (bool(r.variant), values))
    return {base: sorted(labels, key=lambda label: labels[label]) for base, labels in found.items()}


def plot_colors(records: Sequence[Record]) -> dict[str, str]:
    """Every label's colour in a plot of `records`: models their fixed colour, the sweep
    variants of a model shades of it in sweep order (`colors.family_colors`)."""
    return family_colors(sweep_families(records))
