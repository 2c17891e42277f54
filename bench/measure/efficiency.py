"""Efficiency-suite cells: speed and memory relative to full attention measured in the same run.

The baseline's cell of each (task, seed) runs first, so every other model's record can carry
`train_steps_per_s_rel` (model / baseline: above 1 is faster) and `memory_peak_train_bytes_rel`
(model / baseline: below 1 is leaner), plus `train_steps_per_cpu_s_rel` on CPU (steps per process
CPU second: steadier than wall time on a shared machine), read from the baseline's record in the
same run directory. Without an ok baseline record (not in the plan, oom, error) the ratios are
absent and `relative_to` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.records import CellId, Record

BASELINE = "full_attention"
RELATIVE = ("train_steps_per_s", "train_steps_per_cpu_s", "memory_peak_train_bytes")


def in_run_order(cells: list[CellId]) -> list[CellId]:
    """The baseline model's cells first within each task, the rest in plan order (stable)."""
    task_order = {task: i for i, task in enumerate(dict.fromkeys(c.task for c in cells))}
    return sorted(cells, key=lambda c: (task_order[c.task], c.model != BASELINE))


def relative_metrics(
    metrics: Mapping[str, Any], cell: CellId, latest: Mapping[CellId, Record]
) -> dict[str, Any]:
    """`<name>_rel` for each RELATIVE metric against the baseline's ok record of the same task,
    scale and seed, and `relative_to` naming that baseline (or why there is none)."""
    key = CellId(cell.suite, cell.task, BASELINE, cell.scale, cell.seed)
    base = metrics if cell.model == BASELINE else None
    if base is None:
        record = latest.get(key)
        if record is None:
            return {"relative_to": f"none: no {BASELINE} cell for this task in the run"}
        if record.status != "ok":
            return {"relative_to": f"none: the {BASELINE} cell is {record.status}"}
        base = record.metrics
    out: dict[str, Any] = {"relative_to": BASELINE}
    for name in RELATIVE:
        if name in metrics and base.get(name):
            out[f"{name}_rel"] = metrics[name] / base[name]
    return out


def summary_table(records: list[Record]) -> str:
    """One row per cell: length, speed and memory with their ratios to the baseline (Markdown)."""
    from tabulate import tabulate

    def number(value: Any, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, int | float) else "n/a"

    rows = []
    for r in records:
        m = r.metrics
        rows.append(
            [
                r.task,
                r.data.get("max_len", "n/a"),
                r.model,
                r.status,
                number(m.get("train_steps_per_s"), ".2f"),
                number(m.get("train_steps_per_s_rel"), ".2f"),
                number(m.get("train_steps_per_cpu_s_rel"), ".2f"),
                number(m.get("memory_peak_train_bytes", 0) / 1e6 or None, ".1f"),
                number(m.get("memory_peak_train_bytes_rel"), ".2f"),
                number(m.get("flops_fwd_per_example", 0) / 1e9 or None, ".3f"),
                r.reason[:60],
            ]
        )
    headers = ["task", "length", "model", "status", "train steps/s", "x full", "x full (CPU s)"]
    headers += ["peak train MB"]
    headers += ["x full ", "fwd GFLOP/example", "reason"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
