"""Records -> tidy pandas frames, the one input of every table and plot.

`load_runs` reads the latest record of every cell of one or more run directories and, from their
manifests, the task order of each suite, the models the runs planned and each suite's reference
model (the one relative figures are ratios to). `cells_frame` has one row per cell (identity,
status, sequence length); `metrics_frame` one row per (cell, scalar metric) of the `ok` cells,
parameter counts included. In a sweep, a cell's `model` column is its label, `switch[experts=8]`
(`model_label`), so every table and plot keeps sweep points apart; `base_model` and `variant` hold
the parts (`bench.report.sweep` draws the scaling plots). Lists (curves, latency samples) and
strings stay in the records; nothing here knows a fixed list of metrics, so metrics added later
flow through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.manifest import Manifest, read_manifest
from bench.metric_catalog import HARNESS, MetricCatalog
from bench.records import Record, read_records
from bench.report.config_groups import merge_runs
from suites.metric import Metric

CELL_COLUMNS = (
    *("run_id", "suite", "scale", "task", "model", "seed", "length", "status", "reason"),
    *("measurement_error", "base_model", "variant"),
)
METRIC_COLUMNS = (
    *("suite", "scale", "task", "model", "seed", "length", "metric", "value"),
    *("base_model", "variant"),
)


def model_label(record: Record) -> str:
    """The model's name, with the sweep variant in brackets when the cell has one."""
    return f"{record.model}[{record.variant}]" if record.variant else record.model


@dataclass(frozen=True)
class Runs:
    """The latest record of every cell of some runs; each suite's task order and reference model
    (absent for runs whose manifest names none)."""

    records: tuple[Record, ...]
    task_order: dict[str, tuple[str, ...]]
    reference_model: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # e.g. a task run with different configs, shown as groups
    # (suite, task) -> the resolved config {"section.field": value} ({} when unknown)
    configs: dict[tuple[str, str], dict] = field(default_factory=dict)
    # what every figure means: the harness's catalog plus the figures the runs' suites declared
    catalog: MetricCatalog = HARNESS
    # the runs' manifests, in the order given: each table's and plot's provenance line
    manifests: tuple[Manifest, ...] = ()

    def tasks(self, suite: str) -> tuple[str, ...]:
        """Tasks of `suite` in manifest order, then any other task its records name."""
        seen = list(self.task_order.get(suite, ()))
        seen += [r.task for r in self.records if r.suite == suite and r.task not in seen]
        return tuple(dict.fromkeys(seen))

    def models(self) -> tuple[str, ...]:
        """Models (with their sweep variant: `model_label`) in first-appearance order."""
        return tuple(dict.fromkeys(model_label(r) for r in self.records))


def load_runs(run_dirs: Iterable[Path]) -> Runs:
    """Read every run directory; a later directory's record of the same cell wins when the two
    runs resolved the cell's config alike, else both are kept, as config groups of the task
    (`bench.report.config_groups`)."""
    loaded: list[tuple[Record, tuple[str, ...] | None]] = []
    order: dict[str, list[str]] = {}
    reference: dict[str, str] = {}
    declared: list[Metric] = []
    manifests: list[Manifest] = []
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        manifests.append(manifest)
        declared += manifest.suite_metrics
        plan = manifest.plan
        tasks = order.setdefault(plan.suite, [])
        tasks += [t for t in plan.tasks if t not in tasks]
        if manifest.reference_model:
            reference[plan.suite] = manifest.reference_model
        for record in read_records(run_dir):
            shared = manifest.config(record.task).get("model")
            loaded.append((record, tuple(shared) if shared is not None else None))
    merged = merge_runs(loaded, order)
    return Runs(
        merged.records,
        merged.task_order,
        reference,
        merged.notes,
        merged.configs,
        HARNESS.with_metrics(declared),
        tuple(manifests),
    )


def task_lengths(records: Sequence[Record]) -> dict[tuple[str, str, str], int]:
    """(suite, scale, task) -> padded sequence length, from any record that has its data.

    Failed cells carry no data summary; their task's length comes from a sibling record.
    """
    lengths: dict[tuple[str, str, str], int] = {}
    for r in records:
        if "max_len" in r.data:
            lengths.setdefault((r.suite, r.scale, r.task), int(r.data["max_len"]))
    return lengths


def cells_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per cell: identity, status, reason, measurement error (empty when none) and the
    task's length (NA when unknown)."""
    lengths = task_lengths(records)
    rows = [
        (
            r.run_id,
            r.suite,
            r.scale,
            r.task,
            model_label(r),
            r.seed,
            lengths.get((r.suite, r.scale, r.task)),
            r.status,
            r.reason,
            r.measurement_error,
            r.model,
            r.variant,
        )
        for r in records
    ]
    frame = pd.DataFrame(rows, columns=list(CELL_COLUMNS))
    frame["length"] = frame["length"].astype("Int64")
    return frame


def scalar_metrics(record: Record) -> dict[str, float]:
    """The record's finite scalar numbers: parameter counts and every numeric metric."""
    values: dict[str, float] = {}
    if record.params_total is not None:
        values["params_total"] = float(record.params_total)
    if record.params_active is not None:
        values["params_active"] = float(record.params_active)
    for name, value in record.metrics.items():
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and math.isfinite(value):
            values[name] = float(value)
    return values


def metrics_frame(records: Sequence[Record]) -> pd.DataFrame:
    """Tidy: one row per (ok cell, scalar metric)."""
    lengths = task_lengths(records)
    rows = [
        (
            r.suite,
            r.scale,
            r.task,
            model_label(r),
            r.seed,
            lengths.get((r.suite, r.scale, r.task)),
            name,
            value,
            r.model,
            r.variant,
        )
        for r in records
        if r.status == "ok"
        for name, value in scalar_metrics(r).items()
    ]
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    frame["length"] = frame["length"].astype("Int64")
    return frame


def seed_summary(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, sample std (n - 1; NaN for one seed) and seed count of `metric` per
    (suite, scale, task, model)."""
    keys = ["suite", "scale", "task", "model"]
    chosen = metrics[metrics["metric"] == metric]
    summary = chosen.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"])
    return summary.reset_index()
