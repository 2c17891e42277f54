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

from bench.report.accuracy_stats import (
    FALLBACK_NOTE,
    METHOD_NOTE,
    SEEDS_BINOMIAL,
    SEEDS_ONLY,
    SEEDS_ONLY_NOTE,
    CellStats,
    average_comparison,
    cell_stats,
    compare,
    minimum_detectable_points,
)
from bench.report.chance import (
    CHANCE_MARK,
    CHANCE_NOTE,
    SEED_CHANCE_MARK,
    SEED_CHANCE_NOTE,
    chance_level,
    seeds_at_chance,
)
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
SEPARABLE_P = 0.05
TIE_MARK = " ≈"
TIE_NOTE = (
    "≈ highest mean, but not separable from the runner-up by a paired test at 5 % (so neither "
    "is bold): {}."
)
MDE_NOTE = (
    "Minimum detectable effect of this run (two-sided 5 %, 80 % power; normal approximation "
    "with the between-seed variance and the test split's binomial error): {}; a smaller "
    "difference is one this run could not see."
)
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
    from bench.report.lm_tables import lm_tables  # language modelling (suites/lm) only

    return lm_tables(runs) + tables, omitted


def accuracy_tables(runs: Runs, tasks: Sequence[str] | None = None) -> list[Table]:
    """Models x tasks test accuracy in %: mean over seeds with its 95 % interval
    (`bench.report.accuracy_stats`), and the average over tasks; one table per (suite, scale)
    whose records carry `accuracy`. Best is bold only when a paired test separates it from the
    runner-up at 5 %; otherwise it is marked as a tie."""
    cells, metrics = cells_frame(runs.records), metrics_frame(runs.records)
    chance = chance_level(runs.records)
    collapsed = seeds_at_chance(runs.records)
    accuracy = runs.catalog.get(ACCURACY_METRIC)
    shown = column_scale(accuracy, [])
    tables = []
    for (suite, scale), group in cells.groupby(["suite", "scale"], sort=False):
        values = metrics[(metrics.suite == suite) & (metrics.scale == scale)]
        values = values[values.metric == ACCURACY_METRIC]
        if values.empty:
            continue
        records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale)]
        columns = list(tasks) if tasks is not None else list(runs.tasks(suite))
        models = list(dict.fromkeys(group.model))
        found = {
            (model, task): cell_stats(
                [r for r in records if model_label(r) == model and r.task == task]
            )
            for model in models
            for task in columns
        }
        counts = {len(s.seeds) for s in found.values() if s is not None}
        notes: set[str] = set()
        rows = []
        for model in models:
            row = [Cell(model)]
            means = []
            at_chance = 0  # measured cells of this row at chance level
            for task in columns:
                cell = _seed_cell(group, values, model, task, accuracy, shown, notes, False)
                found_cell = found[(model, task)]
                if found_cell is not None:
                    cell = _interval_cell(cell, found_cell, accuracy, shown, len(counts) > 1)
                key = (suite, scale, task, model)
                measured = cell.value is not None  # a missing cell (n/a) carries no mark
                if measured and key in chance:  # shown, never ranked best
                    notes.add(CHANCE_NOTE)
                    at_chance += 1
                    row.append(Cell(cell.text + CHANCE_MARK))
                else:
                    if measured and key in collapsed:
                        k, n = collapsed[key]
                        notes.add(f"{model} on {task}: {k} of {n} seeds")
                        cell = replace(cell, text=cell.text + SEED_CHANCE_MARK)
                    row.append(cell)
                if cell.value is not None:
                    means.append(cell.value)
            average = number(accuracy, mean(means) * shown.divisor, shown) if means else ""
            if not means:
                row.append(Cell(MISSING))
            elif len(means) < len(columns):
                notes.add(INCOMPLETE_NOTE)
                row.append(Cell(f"{average}*"))  # not ranked: not comparable
            elif at_chance == len(columns):  # chance on every task: its average is no better
                row.append(Cell(average + CHANCE_MARK))
            else:
                row.append(Cell(average, value=float(average)))
            rows.append(row)
        _collect_seed_chance(notes)
        higher = accuracy.direction == "higher"
        ranked = _ranked_separable(rows, columns, models, found, higher, notes)
        notes |= _statistics_notes(found, columns)
        seeds = " (n = seeds)"
        if len(counts) == 1:
            seeds = f" over {next(iter(counts))} seed{'s' if counts != {1} else ''}"
        title = f"{capitalized(header(accuracy, shown))} on {suite} at scale {scale}" + (
            f", mean [95 % interval]{seeds}" if counts else ""
        )
        tables.append(
            Table(
                f"accuracy_{suite}_{scale}",
                title,
                ("model", *columns, "average"),
                ranked,
                _ordered(notes),
            )
        )
    return tables


def _interval_cell(
    cell: Cell, found: CellStats, metric: Metric, shown: Scale, with_count: bool
) -> Cell:
    """`cell` (mean over the ok seeds, its status marks) with the 95 % interval after the mean."""
    mean_text = number(metric, found.mean, shown)
    low, high = number(metric, found.low, shown), number(metric, found.high, shown)
    marks = "‡" if cell.text.endswith("‡") else ""  # a partial cell (`_seed_cell`)
    count = f" n={len(found.seeds)}" if with_count else ""
    return Cell(f"{mean_text} [{low}, {high}]{count}{marks}", value=cell.value)


def _collect_seed_chance(notes: set[str]) -> None:
    """Replace the per-cell seed-at-chance entries with the one note that lists them."""
    entries = sorted(n for n in notes if " seeds" in n and " of " in n and n[:1] != "§")
    entries = [n for n in entries if n.split(": ", 1)[-1].split(" of ")[0].isdigit()]
    if entries:
        notes.difference_update(entries)
        notes.add(SEED_CHANCE_NOTE.format("; ".join(entries)))


def _ranked_separable(
    rows: list[list[Cell]],
    columns: Sequence[str],
    models: Sequence[str],
    found: dict[tuple[str, str], CellStats | None],
    higher_is_better: bool,
    notes: set[str],
) -> tuple[tuple[Cell, ...], ...]:
    """Bold the best and underline the runner-up of each column only when the two are separable
    (`accuracy_stats.compare`, p < 5 %); otherwise mark the best `≈` and say why in the notes."""
    out = [list(row) for row in rows]
    for col in range(1, len(rows[0]) if rows else 0):
        ranked = [i for i, r in enumerate(rows) if r[col].value is not None]
        if len(ranked) < 2:
            continue
        ranked.sort(key=lambda i: rows[i][col].value, reverse=higher_is_better)
        best, runner = ranked[0], ranked[1]
        average = col == len(rows[0]) - 1
        tasks = columns if average else [columns[col - 1]]
        pairs = [(found[(models[best], t)], found[(models[runner], t)]) for t in tasks]
        if any(a is None or b is None for a, b in pairs):
            continue
        per_task = [compare(a, b) for a, b in pairs]
        result = per_task[0] if len(per_task) == 1 else average_comparison(per_task)
        where = "average" if average else tasks[0]
        if result.p_value < SEPARABLE_P and rows[best][col].value != rows[runner][col].value:
            out[best][col] = replace(out[best][col], rank=1)
            out[runner][col] = replace(out[runner][col], rank=2)
        else:
            out[best][col] = replace(out[best][col], text=out[best][col].text + TIE_MARK)
            notes.add(
                f"{where}: {models[best]} vs {models[runner]}, p={result.p_value:.2f} "
                f"({result.test})"
            )
    ties = sorted(n for n in notes if " vs " in n and "p=" in n and not n.startswith(TIE_MARK))
    if ties:
        notes.difference_update(ties)
        notes.add(TIE_NOTE.format("; ".join(ties)))
    return tuple(tuple(row) for row in out)


def _statistics_notes(
    found: dict[tuple[str, str], CellStats | None], columns: Sequence[str]
) -> set[str]:
    """The interval method, any fallback to seed-level statistics, and the minimum detectable
    effect of each task."""
    present = [(key, s) for key, s in found.items() if s is not None]
    if not present:
        return set()
    notes = {METHOD_NOTE}
    for method, note in ((SEEDS_BINOMIAL, FALLBACK_NOTE), (SEEDS_ONLY, SEEDS_ONLY_NOTE)):
        which = [f"{m} on {t}" for (m, t), s in present if s.method == method]
        if which:
            notes.add(note.format(", ".join(which)))
    detectable = []
    for task in columns:
        in_task = [s for (_, t), s in present if t == task]
        points = minimum_detectable_points(in_task)
        if points is not None:
            n_test = min(s.n_test for s in in_task if s.n_test)
            n_seeds = min(len(s.seeds) for s in in_task)
            plural = "s" if n_seeds > 1 else ""
            detectable.append(
                f"{task} {points:.1f} points (n_test={n_test}, {n_seeds} seed{plural})"
            )
    if detectable:
        notes.add(MDE_NOTE.format("; ".join(detectable)))
    return notes


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


def _ordered(notes: set[str]) -> tuple[str, ...]:
    order = (INCOMPLETE_NOTE, CHANCE_NOTE, PARTIAL_NOTE, OOM_NOTE, MEASURE_NOTE, METHOD_NOTE)
    return tuple(n for n in order if n in notes) + tuple(sorted(notes - set(order)))
