"""Runs a resolved plan: every cell without an `ok` record goes to the launcher the caller made
(`bench.runner.launch`), and this driver, the run's single writer, appends (and
fsync's) one record as each cell finishes. A killed run loses no finished
cell, and running the plan again on the same directory (`--resume`) reruns only the cells
without a complete `ok` record (a cell whose measurements failed is rerun too)."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.records import CellId, Record, RecordStore
from bench.runner.cell import ProgressFactory
from bench.runner.launch import Launcher
from bench.runner.plan import ResolvedPlan
from bench.runner.run_log import RunLog
from bench.stop_signals import stop_signals_held

log = logging.getLogger(__name__)


def execute(
    resolved: ResolvedPlan,
    run_dir: Path,
    launcher: Launcher,
    *,
    progress: ProgressFactory | None = None,
    run_log: RunLog | None = None,
) -> list[Record]:
    """Run every cell of the plan that has no complete `ok` record yet on `launcher` (the
    caller makes it and closes it: `bench.runner.launch.make_launcher`); return the run's latest
    record of every planned cell, in plan order. `run_log` prints the plan, the data loading and
    a line per cell (`bench.runner.run_log`)."""
    store = RecordStore(run_dir)
    store.repair()
    latest: dict[CellId, Record] = store.latest()
    cells = resolved.plan.cells()
    pending = []
    for cell in cells:
        if complete(latest.get(cell)):
            log.info("%s: already ok, skipped on resume", cell)
        else:
            pending.append(cell)
    if run_log is not None:
        run_log.begin(pending, len(cells) - len(pending))
    for record in launcher.run(resolved, run_dir, pending, progress, run_log):
        cell = record.cell
        with stop_signals_held():  # a stop lands before the record or after its bookkeeping
            store.append(record)
            if run_log is not None:
                run_log.cell_end(record)
            latest[cell] = record
        log.info("%s: %s %s %s", cell, record.status, record.reason, record.measurement_error)
    return [latest[cell] for cell in resolved.plan.cells() if cell in latest]


def complete(record: Record | None) -> bool:
    """An `ok` record whose measurements succeeded: nothing left to rerun."""
    return record is not None and record.status == "ok" and not record.measurement_error
