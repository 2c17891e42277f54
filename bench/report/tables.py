"""Paper-style tables from records: accuracy (LRA layout), efficiency and cost, built as `Table`s
(`bench.report.table` renders them).

A cell without an `ok` record shows `n/a` (or `OOM`), never 0; an average over a row that lacks
a task is marked `*` and excluded from the ranking, since it is not comparable with a complete
one. Best is bold and second underlined, ranked on the displayed (rounded) values. Columns come
from the metrics the records carry (`bench.report.frame`), not from a fixed list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from statistics import mean

import pandas as pd

from bench.report.chance import CHANCE_MARK, CHANCE_NOTE, chance_level
from bench.report.display import Scale, capitalized, column_scale, header, number
from bench.report.frame import Runs, cells_frame, metrics_frame, model_label
from bench.report.relative import relative_figures
from bench.report.table import MISSING, Cell, Table
from bench.report.timing import timed_cell
from suites.metric import Metric

INCOMPLETE_NOTE = "* average over the available tasks only; the row lacks a task."
PARTIAL_NOTE = "‡ mean over the seeds that finished; the other seeds ended in oom or error."
OOM_NOTE = "OOM: out of memory at this setting (recorded as an oom cell)."
MEASURE_NOTE = "† the cell trained, but measuring it failed (its record's measurement_error)."
FVCORE_NOTE = "fvcore's cross-check disagrees with the counted FLOPs for: {}."
ACCURACY_METRIC = "accuracy"
SPEED_METRIC = "train_steps_per_s"
MEMORY_METRIC = "memory_peak_train_bytes"


def report_tables(runs: Runs) -> tuple[list[Table], list[str]]:
    """Every table the records support, and a one-line note for each table left out."""
    tables: list[Table] = []
    omitted: list[str] = []
    for kind, build, needs in (
        ("accuracy", accuracy_tables, "accuracy"),
        ("efficiency", efficiency_tables, f"{SPEED_METRIC} or {MEMORY_METRIC}"),
        ("cost", cost_tables, "FLOPs, latency or memory metrics"),
    ):
        built = build(runs)
        if built:
            tables += built
        else:
            omitted.append(f"{kind} table omitted: no ok record carries {needs}")
    return tables, omitted


def accuracy_tables(runs: Runs, tasks: Sequence[str] | None = None) -> list[Table]:
    """Models x tasks test accuracy in %, mean ± std over seeds, and the average over tasks;
    one table per (suite, scale) whose records carry `accuracy`."""
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    chance = chance_level(runs.records)
    accuracy = runs.catalog.get(ACCURACY_METRIC)
    shown = column_scale(accuracy, [])
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        values = values[values.metric == ACCURACY_METRIC]
        if values.empty:
            continue
        columns = list(tasks) if tasks is not None else list(runs.tasks(suite))
        models = list(dict.fromkeys(group.model))
        notes: set[str] = set()
        rows = []
        for model in models:
            row = [Cell(model)]
            means = []
            for task in columns:
                cell = _seed_cell(group, values, model, task, accuracy, shown, notes)
                if (suite, scale, task, model) in chance:  # shown, never ranked best
                    notes.add(CHANCE_NOTE)
                    row.append(Cell(cell.text + CHANCE_MARK))
                else:
                    row.append(cell)
                if cell.value is not None:
                    means.append(cell.value)
            average = number(accuracy, mean(means) * shown.divisor, shown) if means else ""
            if not means:
                row.append(Cell(MISSING))
            elif len(means) < len(columns):
                notes.add(INCOMPLETE_NOTE)
                row.append(Cell(f"{average}*"))  # not ranked: not comparable
            else:
                row.append(Cell(average, value=float(average)))
            rows.append(row)
        spread = any("±" in c.text for row in rows for c in row)
        title = f"{capitalized(header(accuracy, shown))} on {suite} at scale {scale}" + (
            ", mean ± std over seeds" if spread else ""
        )
        tables.append(
            Table(
                f"accuracy_{suite}_{scale}",
                title,
                ("model", *columns, "average"),
                _ranked(rows, higher_is_better=accuracy.direction == "higher"),
                _ordered(notes),
            )
        )
    return tables


def efficiency_tables(runs: Runs) -> list[Table]:
    """Training steps/s and peak training memory per model and task length, each also as a
    ratio to full attention in the same records."""
    tables = []
    for metric in (SPEED_METRIC, MEMORY_METRIC):
        tables += _relative_tables(runs, runs.catalog.get(metric))
    return tables


def cost_tables(runs: Runs) -> list[Table]:
    """Parameters, FLOPs per example, latency and memory per (task, model), mean over seeds."""
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        present = set(values.metric)
        columns = [m for m in runs.catalog if m.cost and m.name in present]
        if all(m.group == "parameters" for m in columns):
            continue
        scales = {
            m.name: column_scale(m, list(values[values.metric == m.name]["value"])) for m in columns
        }
        notes: set[str] = set()
        rows = []
        for task in runs.tasks(suite):
            in_task = group[group.task == task]
            if in_task.empty:
                continue
            length = in_task.length.dropna()
            length_text = str(int(length.iloc[0])) if len(length) else MISSING
            for model in dict.fromkeys(group.model):
                row = [Cell(task), Cell(model), Cell(length_text)]
                for metric in columns:
                    chosen = values[values.metric == metric.name]
                    shown = scales[metric.name]
                    cell = _seed_cell(group, chosen, model, task, metric, shown, notes, False)
                    mine = _cell_records(runs, suite, scale, model, task)
                    row.append(timed_cell(cell, mine, metric, shown, notes))
                rows.append(tuple(row))
        disagreeing = sorted(
            {
                f"{r.model} on {r.task}"
                for r in runs.records
                if (r.suite, r.scale) == (suite, scale) and "flops_fvcore_disagreement" in r.metrics
            }
        )
        if disagreeing:
            notes.add(FVCORE_NOTE.format(", ".join(disagreeing)))
        headers = ("task", "model", "length", *(header(m, scales[m.name]) for m in columns))
        title = f"Cost per model on {suite} at scale {scale}, mean over seeds"
        name = f"cost_{suite}_{scale}"
        tables.append(Table(name, title, headers, tuple(rows), _ordered(notes), label_columns=2))
    return tables


def _relative_tables(runs: Runs, metric: Metric) -> list[Table]:
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[
            (metrics.suite == suite) & (metrics.scale == scale) & (metrics.metric == metric.name)
        ]
        if values.empty:
            continue
        shown = column_scale(metric, list(values["value"]))
        tasks = [t for t in runs.tasks(suite) if t in set(values.task)]
        lengths = {t: group[group.task == t].length.dropna() for t in tasks}
        headers = ["model"] + [
            f"{t} (L={int(lengths[t].iloc[0])})" if len(lengths[t]) else t for t in tasks
        ]
        reference = runs.reference_model.get(suite)
        ratios = _ratios(runs, suite, scale, reference, metric.name)
        notes: set[str] = set()
        rows = []
        for model in dict.fromkeys(group.model):
            row = [Cell(model)]
            for task in tasks:
                cell = _seed_cell(group, values, model, task, metric, shown, notes, False)
                mine = _cell_records(runs, suite, scale, model, task)
                cell = timed_cell(cell, mine, metric, shown, notes)
                if cell.value is not None and ratios.get((model, task)):
                    mine = ratios[(model, task)]
                    cell = Cell(f"{cell.text} ({sum(mine) / len(mine):.2f}×)")
                row.append(cell)
            rows.append(tuple(row))
        if reference is None:
            notes.add("the runs' manifests name no reference model: ratios are left out.")
        elif not ratios:
            notes.add(f"no {reference} record: ratios are left out.")
        ratio = f" (ratio to {reference})" if reference else ""
        title = f"{capitalized(header(metric, shown))} on {suite} at scale {scale}{ratio}"
        kind = "speed" if metric.name == SPEED_METRIC else "memory"
        name = f"efficiency_{kind}_{suite}_{scale}"
        tables.append(Table(name, title, tuple(headers), tuple(rows), _ordered(notes)))
    return tables


def _ratios(
    runs: Runs, suite: str, scale: str, reference: str | None, metric: str
) -> dict[tuple[str, str], list[float]]:
    """(model label, task) -> each seed's ratio of `metric` to the reference model's cell of the
    same run (`bench.report.relative`: timings of different runs are never divided)."""
    if reference is None:
        return {}
    records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale)]
    out: dict[tuple[str, str], list[float]] = {}
    for record, relative in zip(records, relative_figures(records, reference), strict=True):
        if metric in relative.ratios:
            out.setdefault((model_label(record), record.task), []).append(relative.ratios[metric])
    return out


def _cell_records(runs: Runs, suite: str, scale: str, model: str, task: str) -> list:
    """The ok records of one (model label, task) of a (suite, scale): the seeds of a cell."""
    return [
        r
        for r in runs.records
        if (r.suite, r.scale, r.task, model_label(r)) == (suite, scale, task, model)
        and r.status == "ok"
    ]


def _seed_cell(
    cells: pd.DataFrame,
    values: pd.DataFrame,
    model: str,
    task: str,
    metric: Metric,
    shown: Scale,
    notes: set[str],
    with_std: bool = True,
) -> Cell:
    """Mean (± sample std over seeds when several) of one (model, task) in the column's scale
    `shown`, or its status."""
    seeds = values[(values.model == model) & (values.task == task)]["value"]
    chosen = cells[(cells.model == model) & (cells.task == task)]
    status = chosen.status
    if seeds.empty:
        if (status == "oom").any():
            notes.add(OOM_NOTE)
            return Cell("OOM")
        if (chosen.measurement_error != "").any():
            notes.add(MEASURE_NOTE)
            return Cell(f"{MISSING}†")
        return Cell(MISSING)
    text = number(metric, seeds.mean(), shown)
    if with_std and len(seeds) > 1:
        text += f" ± {number(metric, seeds.std(ddof=1), shown)}"
    if status.isin(["oom", "error"]).any():
        notes.add(PARTIAL_NOTE)
        text += "‡"
    return Cell(text, value=float(number(metric, seeds.mean(), shown).replace(",", "")))


def _ranked(rows: list[list[Cell]], higher_is_better: bool) -> tuple[tuple[Cell, ...], ...]:
    """Mark the best (1) and second-best (2) distinct value of each column, when it has two."""
    out = [list(row) for row in rows]
    for col in range(1, len(rows[0]) if rows else 0):
        values = sorted(
            {r[col].value for r in rows if r[col].value is not None}, reverse=higher_is_better
        )
        if len([r for r in rows if r[col].value is not None]) < 2:
            continue
        for row in out:
            if row[col].value is not None and row[col].value in values[:2]:
                row[col] = replace(row[col], rank=values.index(row[col].value) + 1)
    return tuple(tuple(row) for row in out)


def _ordered(notes: set[str]) -> tuple[str, ...]:
    order = (INCOMPLETE_NOTE, CHANCE_NOTE, PARTIAL_NOTE, OOM_NOTE, MEASURE_NOTE)
    return tuple(n for n in order if n in notes) + tuple(sorted(notes - set(order)))
