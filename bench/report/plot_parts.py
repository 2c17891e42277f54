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
    """The axes' legend below the plot, outside the data (constrained layout makes room)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
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


def plain_log_ticks(ax: Axes, axis: str = "x") -> None:
    """Log-scale ticks labelled as plain numbers (0.5, 2, 50), no minor labels: at 1 x 10^k over
    many decades, 1-2-5 over a few, every integer multiple over less than one, whichever first
    gives 3 to 8 labels inside the axis limits (call after the data and margins are set)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    low, high = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    options = [(1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)]
    chosen = options[-1]
    if low > 0:
        decades = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
        for subs in options:
            ticks = [m * 10**d for d in decades for m in subs]
            inside = [t for t in ticks if low <= t <= high]
            if 3 <= len(inside) <= 8:
                chosen = subs
                break
    target.set_major_locator(LogLocator(base=10, subs=chosen, numticks=12))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
