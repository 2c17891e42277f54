"""What `bench run` prints when it ends: one row per cell, in plan order. An accuracy suite shows
the test accuracy against the majority-class rate, time and throughput; an efficiency suite the
length, speed and memory with their ratios to the reference model (`bench.report.relative`, and
why a cell has none). A cell whose measurements
failed says so in its status column, an accuracy at chance level carries ° (explained below the
table). Reasons are not cut short: the reason column holds a key (`[1]`) and each distinct
reason follows the table once, in full; skipped cells are folded into one line per task and
reason (where it looked, the command that fetches the data)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from bench.records import Record
from bench.report.chance import CHANCE_MARK, CHANCE_NOTE, noise_margin
from bench.report.frame import model_label
from bench.report.relative import relative_figures
from bench.report.table import MISSING


def status_text(record: Record) -> str:
    """The status, with a measurement failure of an ok cell made visible."""
    return "ok, measurement failed" if record.measurement_error else record.status


def summary_table(records: Sequence[Record]) -> str:
    """Accuracy suites: status, test accuracy against the majority-class rate (° at chance
    level), time, throughput, and the reason of a cell that is not cleanly ok. Skipped cells
    are no rows: one line per task and reason after the table says how many and why."""
    rows = []
    reasons: dict[str, str] = {}  # reason -> key
    at_chance = False
    shown, skipped_lines = fold_skipped(records)
    for r in shown:
        m = r.metrics
        ok = r.status == "ok"
        accuracy = MISSING
        if ok:
            chance = _at_chance(r)
            at_chance |= chance
            accuracy = f"{100 * m['accuracy']:.2f}{CHANCE_MARK if chance else ''}"
        rows.append(
            [
                r.task,
                model_label(r),
                r.seed,
                status_text(r),
                accuracy,
                f"{100 * m['majority_accuracy']:.2f}" if ok else MISSING,
                f"{m['train_time_s']:.1f}" if ok else MISSING,
                f"{m['examples_per_s']:.0f}" if ok else MISSING,
                _key(r.reason or r.measurement_error, reasons),
            ]
        )
    headers = ["task", "model", "seed", "status", "test acc %", "majority %", "train time s"]
    headers += ["train examples/s", "reason"]
    lines = [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
    lines = lines if rows else []
    lines += [f"{key} {reason}" for reason, key in reasons.items()]
    if at_chance:
        lines.append(CHANCE_NOTE)
    return "\n".join(lines + skipped_lines)


def fold_skipped(records: Sequence[Record]) -> tuple[list[Record], list[str]]:
    """(the records that are not skipped, one line per task and reason saying how many cells
    were skipped and why): an end-of-run table shows rows only for cells that ran."""
    shown = [r for r in records if r.status != "skipped"]
    skipped: dict[tuple[str, str], int] = {}  # (task, reason) -> cells
    for r in records:
        if r.status == "skipped":
            skipped[(r.task, r.reason)] = skipped.get((r.task, r.reason), 0) + 1
    lines = []
    for (task, reason), count in skipped.items():
        why = reason.removeprefix(f"{task}: ")  # a loader's reason names its task first
        lines.append(f"{task}: {count} cell{'s' if count > 1 else ''} skipped: {why}")
    return shown, lines


def _at_chance(record: Record) -> bool:
    """An ok cell's accuracy within noise of its majority-class rate (`bench.report.chance`)."""
    majority = record.metrics["majority_accuracy"]
    n_test = record.data.get("n_test")
    margin = noise_margin(majority, n_test if isinstance(n_test, int) else None)
    return record.metrics["accuracy"] <= majority + margin


def _key(reason: str, reasons: dict[str, str]) -> str:
    """`[n]` of a reason, numbered in order of first appearance ('' when there is none)."""
    if not reason:
        return ""
    return reasons.setdefault(reason, f"[{len(reasons) + 1}]")


def efficiency_summary(records: Sequence[Record], reference: str) -> str:
    """Efficiency suites: length, speed and memory with their ratios to `reference` (an ok cell
    without ratios says why in the reason column)."""

    def number(value: Any, fmt: str) -> str:
        return format(value, fmt) if isinstance(value, int | float) else MISSING

    rows = []
    reasons: dict[str, str] = {}
    for r, relative in zip(records, relative_figures(records, reference), strict=True):
        m, ratio = r.metrics, relative.ratios
        no_ratio = f"no ratio to {reference}: {relative.why}" if relative.why else ""
        memory = m.get("memory_peak_train_bytes")
        flops = m.get("flops_fwd_per_example")
        rows.append(
            [
                r.task,
                r.data.get("max_len", MISSING),
                model_label(r),
                status_text(r),
                number(m.get("train_steps_per_s"), ".2f"),
                number(ratio.get("train_steps_per_s"), ".2f"),
                number(ratio.get("train_steps_per_cpu_s"), ".2f"),
                number(memory / 1e6 if memory is not None else None, ".1f"),
                number(ratio.get("memory_peak_train_bytes"), ".2f"),
                number(flops / 1e9 if flops is not None else None, ".3f"),
                _key(r.reason or r.measurement_error or no_ratio, reasons),
            ]
        )
    ratio = f"x {reference}"
    headers = ["task", "length", "model", "status", "train steps/s", ratio, f"{ratio} (CPU s)"]
    headers += ["peak train MB", f"{ratio} ", "fwd GFLOP/example", "reason"]
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return table + "".join(f"\n{key} {reason}" for reason, key in reasons.items())
