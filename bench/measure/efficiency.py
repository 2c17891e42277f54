"""Efficiency-suite cells: speed and memory relative to the suite's reference model (full
attention for the LRA efficiency table) measured in the same run.

The reference model's cell of each (task, seed) runs first, so every other model's record can
carry `train_steps_per_s_rel` (model / reference: above 1 is faster) and
`memory_peak_train_bytes_rel` (model / reference: below 1 is leaner), plus
`train_steps_per_cpu_s_rel` on CPU (steps per process CPU second: steadier than wall time on a
shared machine), taken from the reference's record among the run's finished records. Without an
ok reference record (not in the plan, oom, error) the ratios are absent and `relative_to` says
why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.records import CellId, Record

RELATIVE = ("train_steps_per_s", "train_steps_per_cpu_s", "memory_peak_train_bytes")


def in_run_order(cells: list[CellId], reference: str) -> list[CellId]:
    """The reference model's cells first within each task, the rest in plan order (stable)."""
    task_order = {task: i for i, task in enumerate(dict.fromkeys(c.task for c in cells))}
    return sorted(cells, key=lambda c: (task_order[c.task], c.model != reference))


def relative_metrics(
    metrics: Mapping[str, Any], cell: CellId, finished: Mapping[CellId, Record], reference: str
) -> dict[str, Any]:
    """`<name>_rel` for each RELATIVE metric against the reference model's ok record of the same
    task, scale, seed and sweep variant in `finished`, and `relative_to` naming it (or why there
    is none)."""
    key = CellId(cell.suite, cell.task, reference, cell.scale, cell.seed, cell.variant)
    base = metrics if cell.model == reference else None
    if base is None:
        record = finished.get(key)
        if record is None:
            return {"relative_to": f"none: no {reference} cell for this task in the run"}
        if record.status != "ok":
            return {"relative_to": f"none: the {reference} cell is {record.status}"}
        base = record.metrics
    out: dict[str, Any] = {"relative_to": reference}
    for name in RELATIVE:
        if name in metrics and base.get(name):
            out[f"{name}_rel"] = metrics[name] / base[name]
    return out
