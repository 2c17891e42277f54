"""Efficiency ratios: a cell's training speed and peak training memory as ratios to the suite's
reference model (full attention for the LRA efficiency table), computed here and only here from
the records (`bench run`'s end-of-run summary calls it); a record stores only its own figures.

Each ratio is this cell's figure / the reference's: `train_steps_per_s` (above 1 is faster),
`train_steps_per_cpu_s` (steps per process CPU second, measured on CPU: steadier than wall time on
a shared machine) and `memory_peak_train_bytes` (below 1 is leaner). The reference is the
reference model's `ok` record of the same run and the same (suite, task, scale, seed, sweep
variant): timings of different runs are never divided, since they drift with the machine's load
and the day. Where there is no such record, or it carries none of the figures, `why` says so.
Imports no torch, so `bench report` stays light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.records import CellId, Record

RELATIVE_FIGURES = ("train_steps_per_s", "train_steps_per_cpu_s", "memory_peak_train_bytes")


@dataclass(frozen=True)
class RelativeFigures:
    """One record's ratios to `reference`: {figure: this cell's / the reference cell's} for each
    of RELATIVE_FIGURES that both carry (a reference figure of 0 divides nothing); `why` says why
    there are none ('' when there are)."""

    run_id: str
    cell: CellId
    reference: str
    ratios: Mapping[str, float] = field(default_factory=dict)
    why: str = ""


def relative_figures(records: Sequence[Record], reference: str) -> list[RelativeFigures]:
    """The ratios of each of `records` (in their order) to the `reference` model's record of the
    same run and cell. `records` hold at most one record per cell of a run (the latest: a
    resumed run's file has older ones; `bench.records.read_records` gives the latest)."""
    by_cell: dict[tuple[str, CellId], Record] = {}
    for record in records:
        key = (record.run_id, record.cell)
        if key in by_cell:
            raise ValueError(
                f"two records of {record.cell} in run {record.run_id}: pass only the latest "
                "record of each cell (bench.records.read_records)"
            )
        by_cell[key] = record
    return [_relative(record, reference, by_cell) for record in records]


def _relative(
    record: Record, reference: str, by_cell: Mapping[tuple[str, CellId], Record]
) -> RelativeFigures:
    def none(why: str) -> RelativeFigures:
        return RelativeFigures(record.run_id, record.cell, reference, {}, why)

    if record.status != "ok":
        return none(f"this cell is {record.status}")
    base = by_cell.get((record.run_id, dataclasses.replace(record.cell, model=reference)))
    if base is None:
        return none(
            f"no {reference} cell of the same task, scale, seed and variant in run {record.run_id}"
        )
    if base.status != "ok":
        return none(f"the {reference} cell is {base.status}")
    ratios = {
        name: record.metrics[name] / base.metrics[name]
        for name in RELATIVE_FIGURES
        if _number(record.metrics.get(name)) and _number(base.metrics.get(name))
        if base.metrics[name] != 0
    }
    if ratios:
        return RelativeFigures(record.run_id, record.cell, reference, ratios)
    if base.measurement_error:
        return none(f"the {reference} cell's measurements failed")
    if record.measurement_error:
        return none("this cell's measurements failed")
    return none(f"the two cells share no nonzero figure of {', '.join(RELATIVE_FIGURES)}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
