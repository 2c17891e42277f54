"""The protocol line every table and plot of a report carries, so that a pasted table or figure
states how it was made: per run, the `--set` overrides and sweep, the seeds and the data seed,
the commit and whether the tree was dirty, the threads, read from the runs' manifests
(`bench.manifest`). Tables get it as their last note; figures as a small text line under the
axes. A timing table built from several runs also says to compare timings within one run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from bench.manifest import Manifest
from bench.report.table import Table
from bench.report.timing import ACROSS_RUNS_NOTE, BUSY_NOTE, INTERVAL_NOTE

if TYPE_CHECKING:  # matplotlib is imported only when plots are drawn
    from matplotlib.figure import Figure

FOOTER_FONT_SIZE = 4.5
FIGURE_WRAP = 100  # characters per footer line: about one column's width at FOOTER_FONT_SIZE


def run_protocol(manifest: Manifest) -> str:
    """One run's protocol: 'run r1: train.steps=200; seeds 0,1,2; data seed 0; commit
    6aec7d9 (dirty); threads 1 (torch 1)'."""
    plan, env = manifest.plan, manifest.environment
    overrides = ", ".join(plan.overrides) if plan.overrides else "no overrides"
    sweep = f"; sweep {', '.join(plan.sweep)}" if plan.sweep else ""
    data_seeds = sorted(
        {
            str(config["data"]["seed"])
            for config in manifest.configs.values()
            if isinstance(config.get("data"), dict) and "seed" in config["data"]
        }
    )
    data_seed = f"data seed {','.join(data_seeds)}" if data_seeds else "data seed unknown"
    sha = env.get("git_sha")
    commit = f"commit {sha[:7]}" if sha else "commit unknown"
    dirty = env.get("git_dirty")
    commit += " (dirty)" if dirty else "" if dirty is False else " (dirty: unknown)"
    threads = "torch default" if plan.threads is None else str(plan.threads)
    torch_threads = env.get("torch_threads")
    if torch_threads is not None:
        threads += f" (torch {torch_threads})"
    seeds = ",".join(str(s) for s in plan.seeds)
    return (
        f"run {manifest.run_id}: {overrides}{sweep}; seeds {seeds}; {data_seed}; {commit}; "
        f"threads {threads}; device {plan.device}"
    )


def provenance_line(manifests: Sequence[Manifest]) -> str:
    """'Protocol: ' and each run's protocol, '; '-joined runs separated by ' | '."""
    if not manifests:
        return "Protocol: unknown (no manifest)"
    return "Protocol: " + " | ".join(run_protocol(m) for m in manifests)


def with_provenance(table: Table, manifests: Sequence[Manifest]) -> Table:
    """`table` with the protocol line as its last note; a timing table of several runs also
    gets the note to compare timings within one run."""
    notes = list(table.notes)
    timing = {INTERVAL_NOTE, BUSY_NOTE} & set(notes) or table.name.startswith("efficiency_speed")
    if timing and len(manifests) > 1:
        names = ", ".join(m.run_id for m in manifests)
        notes.append(ACROSS_RUNS_NOTE.format(len(manifests), names))
    return replace(table, notes=(*notes, provenance_line(manifests)))


def stamp(fig: Figure, manifests: Sequence[Manifest], notes: Sequence[str] = ()) -> Figure:
    """Write the protocol line (and `notes`) as small text under everything the figure draws,
    legends included (`plot_figure.add_footer`)."""
    from bench.report.plot_figure import add_footer

    lines = [*notes, provenance_line(manifests)]
    add_footer(fig, "\n".join(textwrap.fill(line, FIGURE_WRAP) for line in lines),
               FOOTER_FONT_SIZE)  # fmt: skip
    return fig
