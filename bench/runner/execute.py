"""Runs a resolved plan: every cell without an `ok` record goes to a launcher (in-process by
default, `bench.runner.launch`), and this driver, the run's single writer, appends (and
fsync's) one record as each cell finishes. A killed run loses no finished
cell, and running the plan again on the same directory (`--resume`) reruns only the cells
without a complete `ok` record (a cell whose measurements failed is rerun too)."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from bench.measure import efficiency
from bench.records import CellId, Record, RecordStore
from bench.runner.cell import ProgressFactory
from bench.runner.plan import ResolvedPlan
from bench.runner.run_log import RunLog
from bench.stop_signals import stop_signals_held
from suites.data import DataRequest, DataUnavailable, TaskData

if TYPE_CHECKING:
    from bench.runner.launch import Launcher

log = logging.getLogger(__name__)


def execute(
    resolved: ResolvedPlan,
    run_dir: Path,
    progress: ProgressFactory | None = None,
    run_log: RunLog | None = None,
    launcher: Launcher | None = None,
) -> list[Record]:
    """Run every cell of the plan that has no complete `ok` record yet on `launcher` (default:
    in-process); return the run's latest record of every planned cell, in plan order.
    `run_log` prints the plan, the data loading and a line per cell (`bench.runner.run_log`)."""
    if launcher is None:
        from bench.runner.launch import InProcessLauncher

        launcher = InProcessLauncher()
    store = RecordStore(run_dir)
    store.repair()
    latest: dict[CellId, Record] = store.latest()
    cells = resolved.plan.cells()
    if resolved.suite.kind == "efficiency":  # the reference first: others are relative to it
        cells = efficiency.in_run_order(cells, resolved.suite.reference_model)
    pending = []
    for cell in cells:
        if complete(latest.get(cell)):
            log.info("%s: already ok, skipped on resume", cell)
        else:
            pending.append(cell)
    if run_log is not None:
        run_log.begin(pending, len(cells) - len(pending))
    for record in launcher.run(resolved, run_dir, pending, latest, progress, run_log):
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


def load_task_data(resolved: ResolvedPlan, task: str, variant: str = "") -> TaskData | Exception:
    """The task's data (at sweep point `variant`), or the loader's exception (recorded in every
    cell of the task, with the traceback logged; DataUnavailable makes the cells `skipped`)."""
    cfg = resolved.config(task, variant).data
    plan = resolved.plan
    request = DataRequest(
        max_len=cfg.max_len,
        n_train=cfg.n_train,
        n_dev=cfg.n_dev,
        n_test=cfg.n_test,
        seed=cfg.seed,
        cache_dir=Path(plan.cache_dir),
        data_dir=Path(plan.data_dir_for(task)) if plan.data_dir_for(task) else None,
        generator=cfg.generator,
    )
    try:
        return resolved.tasks[task].load(request)
    except DataUnavailable as exc:
        return exc
    except Exception as exc:  # recorded in every cell of the task, not swallowed
        log.error("loading %s failed:\n%s", task, traceback.format_exc())
        return exc
