"""Equal-budget views: who is best depends on the budget, so each model's dev-accuracy curve is
read at budgets every model reached, of cumulative training FLOPs (training examples seen x the
counted `flops_train_per_example`; dev evaluations not counted) and of training-step wall time
(`dev_curve_train_s`; evaluations not counted). Between two evaluations the curve is linearly
interpolated; below a cell's first or past its last evaluation it has no value, so the budgets
lie where every cell's curve is defined. Each table cell is the mean over seeds with a 95 %
t-interval over the seeds (dev accuracy keeps no per-example predictions). Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from bench.records import Record
from bench.report.display import si_scale
from bench.report.frame import Runs, model_label
from bench.report.table import Cell, Table
from bench.report.timing import BUSY_MARK, BUSY_NOTE

AXES = ("flops", "time")
AXIS_LABEL = {
    "flops": "cumulative training FLOPs",
    "time": "training-step wall time",
}
AXIS_UNIT = {"flops": "FLOP", "time": "s"}
BUDGET_FRACTIONS = (0.25, 0.5, 1.0)  # of the largest budget every cell reached
INTERVAL_NOTE = (
    "Dev accuracy (%) read off each seed's learning curve by linear interpolation between "
    "evaluations; mean over seeds [95 % t-interval over seeds, clipped to 0-100; none with one "
    "seed]."
)
FLOPS_NOTE = (
    "Training FLOPs: training examples seen x the counted forward+backward FLOPs per example "
    "(flops_train_per_example); dev evaluations not counted."
)
TIME_NOTE = (
    "Wall time: seconds of training steps only (dev_curve_train_s), measured in the cell's run; "
    "a wall-clock comparison holds only within one run on one machine."
)


@dataclass(frozen=True)
class Curve:
    """One cell's dev accuracy (fraction) against a budget (FLOPs or seconds), increasing."""

    budget: np.ndarray  # (E,) at each evaluation
    accuracy: np.ndarray  # (E,)


def budget_curve(record: Record, axis: str) -> Curve | None:
    """The cell's learning curve against `axis` ("flops" or "time"); None when the record lacks
    what it needs (an older record, a cell whose FLOPs were not counted)."""
    metrics = record.metrics
    dev = metrics.get("dev_curve")
    if record.status != "ok" or not dev:
        return None
    accuracy = np.asarray([p[1] for p in dev], dtype=float)
    if axis == "flops":
        examples, per_example = (
            metrics.get("dev_curve_examples"),
            metrics.get("flops_train_per_example"),
        )
        if not examples or not isinstance(per_example, int | float):
            return None
        budget = np.asarray(examples, dtype=float) * float(per_example)
    elif axis == "time":
        if not metrics.get("dev_curve_train_s"):
            return None
        budget = np.asarray(metrics["dev_curve_train_s"], dtype=float)
    else:
        raise ValueError(f"unknown budget axis {axis!r}; use one of {', '.join(AXES)}")
    if budget.shape != accuracy.shape:
        return None
    return Curve(budget, accuracy)


def accuracy_at(curve: Curve, budget: float) -> float | None:
    """Dev accuracy at `budget`, linear between the two evaluations around it; None outside the
    curve (before its first evaluation or past its last)."""
    if not curve.budget[0] <= budget <= curve.budget[-1]:
        return None
    return float(np.interp(budget, curve.budget, curve.accuracy))


def common_budgets(curves: Sequence[Curve]) -> list[float]:
    """BUDGET_FRACTIONS of the largest budget every curve reached, those that every curve
    reaches from its first evaluation on ([] when the curves share no budget)."""
    if not curves:
        return []
    low = max(float(c.budget[0]) for c in curves)
    high = min(float(c.budget[-1]) for c in curves)
    if low > high:
        return []
    chosen = [high * f for f in BUDGET_FRACTIONS if high * f >= low]
    if len(chosen) == 1 and low < high:
        chosen = [low, high]
    return chosen


def mean_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and its 95 % t-interval over seeds, clipped to [0, 1] (no interval for one
    seed)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if array.size < 2:
        return mean, None, None
    half = float(stats.t.ppf(0.975, array.size - 1) * array.std(ddof=1) / np.sqrt(array.size))
    return mean, max(0.0, mean - half), min(1.0, mean + half)


def budget_tables(runs: Runs) -> list[Table]:
    """Per (suite, scale, task) and axis with overlapping curves: models x common budgets."""
    tables = []
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for r in runs.records:
        if r.status == "ok":
            groups.setdefault((r.suite, r.scale, r.task), []).append(r)
    for (suite, scale, task), records in groups.items():
        for axis in AXES:
            table = _budget_table(suite, scale, task, records, axis)
            if table is not None:
                tables.append(table)
    return tables


def _budget_table(
    suite: str, scale: str, task: str, records: list[Record], axis: str
) -> Table | None:
    curves = {id(r): budget_curve(r, axis) for r in records}
    present = [r for r in records if curves[id(r)] is not None]
    budgets = common_budgets([curves[id(r)] for r in present])
    if not budgets:
        return None
    shown = si_scale(budgets, AXIS_UNIT[axis])
    notes = [INTERVAL_NOTE, FLOPS_NOTE if axis == "flops" else TIME_NOTE]
    rows = []
    seeds = set()
    for model in dict.fromkeys(model_label(r) for r in present):
        mine = [r for r in present if model_label(r) == model]
        seeds.add(len(mine))
        row = [Cell(model)]
        for budget in budgets:
            values = [accuracy_at(curves[id(r)], budget) for r in mine]
            mean, low, high = mean_interval([v for v in values if v is not None])
            text = f"{100 * mean:.1f}"
            if low is not None:
                text += f" [{100 * low:.1f}, {100 * high:.1f}]"
            if axis == "time" and any("machine_busy" in r.metrics for r in mine):
                text += BUSY_MARK
                if BUSY_NOTE not in notes:
                    notes.append(BUSY_NOTE)
            row.append(Cell(text, value=mean))
        rows.append(tuple(row))
    n = "/".join(str(s) for s in sorted(seeds))
    headers = ("model", *(f"{b / shown.divisor:.3g} {shown.unit}" for b in budgets))
    title = (
        f"Dev accuracy (%) at equal {AXIS_LABEL[axis]} on {suite}/{task} at scale {scale}, "
        f"n = {n} seeds"
    )
    return Table(f"budget_{axis}_{suite}_{scale}_{task}", title, headers, tuple(rows), tuple(notes))
