"""Paper-style tables from records: accuracy (LRA layout), efficiency and cost, built as `Table`s
(`bench.report.table` renders them).

A cell without an `ok` record shows `n/a` (or `OOM`), never 0; an average over a row that lacks
a task is marked `*` and excluded from the ranking, since it is not comparable with a complete
one. Best is bold and second underlined, ranked on the displayed (rounded) values. Columns come
from the metrics the records carry (`bench.report.frame`), not from a fixed list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from statistics import mean

import pandas as pd

from bench.report.chance import CHANCE_MARK, CHANCE_NOTE, chance_level
from bench.report.frame import Runs, cells_frame, metrics_frame
from bench.report.table import MISSING, Cell, Table

INCOMPLETE_NOTE = "* average over the available tasks only; the row lacks a task."
PARTIAL_NOTE = "‡ mean over the seeds that finished; the other seeds ended in oom or error."
OOM_NOTE = "OOM: out of memory at this setting (recorded as an oom cell)."
MEASURE_NOTE = "† the cell trained, but measuring it failed (its record's measurement_error)."
FVCORE_NOTE = "fvcore's cross-check disagrees with the counted FLOPs for: {}."
SPEED_METRIC = "train_steps_per_s"
MEMORY_METRIC = "memory_peak_train_bytes"
# Cost columns: metric name patterns, in column order.
_FLOP_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
COST_PATTERNS = (r"params_total", r"params_active", r"flops_.+", r"latency_.+_median", r"memory_.+")


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
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        values = values[values.metric == "accuracy"]
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
                cell = _seed_cell(group, values, model, task, lambda v: 100 * v, ".2f", notes)
                if (suite, scale, task, model) in chance:  # shown, never ranked best
                    notes.add(CHANCE_NOTE)
                    row.append(Cell(cell.text + CHANCE_MARK))
                else:
                    row.append(cell)
                if cell.value is not None:
                    means.append(cell.value)
            if not means:
                row.append(Cell(MISSING))
            elif len(means) < len(columns):
                notes.add(INCOMPLETE_NOTE)
                row.append(Cell(f"{mean(means):.2f}*"))  # not ranked: not comparable
            else:
                row.append(Cell(f"{mean(means):.2f}", value=round(mean(means), 2)))
            rows.append(row)
        spread = any("±" in c.text for row in rows for c in row)
        title = f"Test accuracy (%) on {suite} at scale {scale}" + (
            ", mean ± std over seeds" if spread else ""
        )
        tables.append(
            Table(
                f"accuracy_{suite}_{scale}",
                title,
                ("model", *columns, "average"),
                _ranked(rows, higher_is_better=True),
                _ordered(notes),
            )
        )
    return tables


def efficiency_tables(runs: Runs) -> list[Table]:
    """Training steps/s and peak training memory per model and task length, each also as a
    ratio to full attention in the same records."""
    tables = []
    for metric, label, scale_fn, fmt in (
        (SPEED_METRIC, "Training steps per second", lambda v: v, ".3g"),
        (MEMORY_METRIC, "Peak training memory (MB)", lambda v: v / 1e6, ".3g"),
    ):
        tables += _relative_tables(runs, metric, label, scale_fn, fmt)
    return tables


def cost_tables(runs: Runs) -> list[Table]:
    """Parameters, FLOPs per example, latency and memory per (task, model), mean over seeds."""
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        present = list(dict.fromkeys(values.metric))
        columns = [m for p in COST_PATTERNS for m in present if re.fullmatch(p, m)]
        columns = list(dict.fromkeys(columns))
        if not any(not c.startswith("params_") for c in columns):
            continue
        top = values.groupby("metric")["value"].max()
        units = {m: _unit(m, float(top[m])) for m in columns}
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
                    unit_fn, fmt = units[metric][1:]
                    chosen = values[values.metric == metric]
                    row.append(_seed_cell(group, chosen, model, task, unit_fn, fmt, notes, False))
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
        headers = ("task", "model", "length", *(units[m][0] for m in columns))
        title = f"Cost per model on {suite} at scale {scale}, mean over seeds"
        name = f"cost_{suite}_{scale}"
        tables.append(Table(name, title, headers, tuple(rows), _ordered(notes), label_columns=2))
    return tables


def _relative_tables(
    runs: Runs, metric: str, label: str, scale_fn: Callable[[float], float], fmt: str
) -> list[Table]:
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[
            (metrics.suite == suite) & (metrics.scale == scale) & (metrics.metric == metric)
        ]
        if values.empty:
            continue
        tasks = [t for t in runs.tasks(suite) if t in set(values.task)]
        lengths = {t: group[group.task == t].length.dropna() for t in tasks}
        headers = ["model"] + [
            f"{t} (L={int(lengths[t].iloc[0])})" if len(lengths[t]) else t for t in tasks
        ]
        reference = runs.reference_model.get(suite)
        base = values[values.model == reference].groupby("task")["value"].mean()
        notes: set[str] = set()
        rows = []
        for model in dict.fromkeys(group.model):
            row = [Cell(model)]
            for task in tasks:
                cell = _seed_cell(group, values, model, task, scale_fn, fmt, notes, False)
                if cell.value is not None and task in base:
                    own = values[(values.model == model) & (values.task == task)]["value"]
                    cell = Cell(f"{cell.text} ({own.mean() / base[task]:.2f}×)")
                row.append(cell)
            rows.append(tuple(row))
        if reference is None:
            notes.add("the runs' manifests name no reference model: ratios are left out.")
        elif base.empty:
            notes.add(f"no {reference} record: ratios are left out.")
        ratio = f" (ratio to {reference})" if reference else ""
        title = f"{label} on {suite} at scale {scale}{ratio}"
        name = f"efficiency_{'speed' if metric == SPEED_METRIC else 'memory'}_{suite}_{scale}"
        tables.append(Table(name, title, tuple(headers), tuple(rows), _ordered(notes)))
    return tables


def _seed_cell(
    cells: pd.DataFrame,
    values: pd.DataFrame,
    model: str,
    task: str,
    scale_fn: Callable[[float], float],
    fmt: str,
    notes: set[str],
    with_std: bool = True,
) -> Cell:
    """Mean (± sample std over seeds when several) of one (model, task), or its status."""
    seeds = values[(values.model == model) & (values.task == task)]["value"].map(scale_fn)
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
    text = format(seeds.mean(), fmt)
    if with_std and len(seeds) > 1:
        text += f" ± {seeds.std(ddof=1):{fmt}}"
    if status.isin(["oom", "error"]).any():
        notes.add(PARTIAL_NOTE)
        text += "‡"
    return Cell(text, value=float(format(seeds.mean(), fmt)))


def _unit(metric: str, top: float) -> tuple[str, Callable[[float], float], str]:
    """(column header with its unit, conversion from the SI value, number format); FLOPs take
    the largest prefix that keeps the column's largest value (`top`) at least 1."""
    if metric.startswith("params_"):
        return metric.replace("_", " ").replace("params", "parameters"), lambda v: v, ".0f"
    if m := re.fullmatch(r"flops_(.+?)_per_example(?:_(.+))?", metric):
        suffix = f" ({m.group(2)})" if m.group(2) else ""
        scale, prefix = next(((f, p) for f, p in _FLOP_PREFIXES if top >= f), _FLOP_PREFIXES[-1])
        return f"{prefix}FLOP {m.group(1)}/example{suffix}", lambda v: v / scale, ".4g"
    if m := re.fullmatch(r"latency_(.+)_s_median", metric):
        return f"{m.group(1).replace('_', ' ')} ms (median)", lambda v: v * 1e3, ".3g"
    if m := re.fullmatch(r"memory_peak_(.+)_bytes", metric):
        return f"peak {m.group(1)} memory MB", lambda v: v / 1e6, ".3g"
    return metric, lambda v: v, ".4g"  # a metric named outside the conventions: as stored


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
