"""Markdown tables from records: the LRA-style accuracy table and the end-of-run summary.

A cell without an `ok` record shows `n/a`, never 0; an average over a row that lacks a task is
marked with `*` and a footnote, since it is not comparable with a complete one.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean

from tabulate import tabulate

from bench.records import Record

MISSING = "n/a"


def accuracy_table(records: Sequence[Record], tasks: Sequence[str]) -> str:
    """Models x tasks test accuracy in %, mean over seeds, plus the average over tasks."""
    models = list(dict.fromkeys(r.model for r in records))  # first-appearance order
    rows = []
    incomplete = False
    for model in models:
        row: list[str] = [model]
        values = []
        for task in tasks:
            accs = [
                r.metrics["accuracy"]
                for r in records
                if r.model == model and r.task == task and r.status == "ok"
            ]
            if accs:
                values.append(100 * mean(accs))
                row.append(f"{values[-1]:.2f}")
            else:
                row.append(MISSING)
        if not values:
            row.append(MISSING)
        elif len(values) < len(tasks):
            incomplete = True
            row.append(f"{mean(values):.2f}*")
        else:
            row.append(f"{mean(values):.2f}")
        rows.append(row)
    table = tabulate(
        rows, headers=["model", *tasks, "average"], tablefmt="github", disable_numparse=True
    )
    if incomplete:
        table += "\n\n\\* average over the available tasks only; the row lacks a task."
    return table


def summary_table(records: Sequence[Record]) -> str:
    """One row per cell, in the given order: status, accuracy against the majority-class rate,
    time, throughput."""
    rows = []
    for r in records:  # in the order given: the run's plan order
        m = r.metrics
        ok = r.status == "ok"
        rows.append(
            [
                r.task,
                r.model,
                r.seed,
                r.status,
                f"{100 * m['accuracy']:.2f}" if ok else MISSING,
                f"{100 * m['majority_accuracy']:.2f}" if ok else MISSING,
                f"{m['train_time_s']:.1f}" if ok else MISSING,
                f"{m['examples_per_s']:.0f}" if ok else MISSING,
                _shorten(r.reason),
            ]
        )
    headers = [
        "task",
        "model",
        "seed",
        "status",
        "test acc %",
        "majority %",
        "train time s",
        "train examples/s",
        "reason",
    ]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _shorten(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
