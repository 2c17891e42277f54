"""`bench report`: every table and plot the records of some runs support, printed or written.

Without an output directory the tables are returned as text in the chosen format; with one,
each table goes to `<name>.<md|tex>` (CSV: the one data file `cells.csv`, one row per cell) and
each plot to `<stem>.png` and `<stem>.pdf`, every name made one plain file name first (it holds
suite and scale names from the records: `bench.report.file_names`). Every table and plot carries
the runs' protocol line (`bench.report.provenance`). What the records cannot support is left out
with a one-line note, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report.budget import budget_tables
from bench.report.csv_data import cells_csv
from bench.report.file_names import file_stem
from bench.report.frame import Runs, load_runs
from bench.report.pareto import pareto_tables
from bench.report.provenance import stamp, with_provenance
from bench.report.sweep import sweep_plots, sweep_tables
from bench.report.table import render, table_csv
from bench.report.tables import report_tables
from suites.atomic import write_text_atomic

EXTENSIONS = {"md": "md", "latex": "tex"}
CELLS_CSV = "cells.csv"


@dataclass(frozen=True)
class Report:
    text: str  # the rendered tables (stdout)
    files: tuple[Path, ...]  # files written under the output directory
    notes: tuple[str, ...]  # what was left out, one line each


def build_report(
    run_dirs: Sequence[Path],
    fmt: str,
    out: Path | None = None,
    plots: bool = True,
    published: Sequence[str] = (),
    vs: str | None = None,
) -> Report:
    runs = load_runs(run_dirs)
    tables, notes = report_tables(runs)
    if vs is not None:  # each model against `vs`, paired
        from bench.report.paired_table import paired_tables

        tables = paired_tables(runs, vs) + tables
    tables += sweep_tables(runs)
    tables += budget_tables(runs) + pareto_tables(runs)
    if published:
        from bench.report.published import published_tables

        extra, extra_notes = published_tables(runs, run_dirs, published)
        tables, notes = tables + extra, notes + extra_notes
    notes = [*runs.notes, *notes]
    tables = [with_provenance(table, runs.manifests) for table in tables]
    if fmt == "csv":  # data, one row per cell: not a rendering of the tables
        rendered = [(CELLS_CSV, cells_csv(runs))]
        rendered += [
            (f"{file_stem(t.name)}.csv", table_csv(t))
            for t in tables
            if t.name.startswith("paired_")
        ]
        if published:
            notes.append("--published tables are renderings: they are in --format md and tex")
    else:
        # a table's name holds suite and scale names from the records: one plain file name
        rendered = [
            (f"{file_stem(table.name)}.{EXTENSIONS[fmt]}", render(table, fmt)) for table in tables
        ]
    files: list[Path] = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered:
            path = out / name
            write_text_atomic(path, text + "\n")  # a kill never leaves half a table
            files.append(path)
        if plots:
            from bench.report.plot_figure import save

            figures, plot_notes = report_figures(runs)
            notes += plot_notes
            for stem, fig in figures:
                files += save(fig, out, stem)
    elif plots:
        notes.append("plots are written only with --out DIR")
    return Report("\n\n".join(text for _, text in rendered), tuple(files), tuple(notes))


def report_figures(runs: Runs) -> tuple[list, list[str]]:
    """Every plot the records support, each stamped with the protocol line, and a one-line note
    for each kind left out (imports matplotlib: called only when plots are written)."""
    from bench.report.plots import all_plots

    figures, notes = all_plots(runs)
    figures += sweep_plots(runs)
    return [(stem, stamp(fig, runs.manifests)) for stem, fig in figures], notes
