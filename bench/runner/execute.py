"""Runs a resolved plan: every cell without an `ok` record, in order, each task's data loaded
once, one record appended (and fsync'ed) as each cell finishes. A killed run loses no finished
cell, and running the plan again on the same directory (`--resume`) reruns only the cells
without a complete `ok` record (a cell whose measurements failed is rerun too)."""

from __future__ import annotations

import functools
import logging
import traceback
from pathlib import Path

from bench.measure import efficiency
from bench.records import CellId, Record, RecordStore
from bench.runner.cell import ProgressFactory, run_cell
from bench.runner.load import load_average, with_load
from bench.runner.plan import ResolvedPlan
from bench.runner.run_log import RunLog
from suites.data import DataRequest, DataUnavailable, TaskData

log = logging.getLogger(__name__)


def execute(
    resolved: ResolvedPlan,
    run_dir: Path,
    progress: ProgressFactory | None = None,
    run_log: RunLog | None = None,
) -> list[Record]:
    """Run every cell of the plan that has no complete `ok` record yet; return the run's latest
    record of every planned cell, in plan order. `run_log` prints the plan, the data loading
    and a line per cell (`bench.runner.run_log`); each record carries the load average."""
    store = RecordStore(run_dir)
    store.repair()
    latest: dict[CellId, Record] = store.latest()
    data_by_task: dict[str, TaskData | Exception] = {}
    cells = resolved.plan.cells()
    if resolved.suite.kind == "efficiency":  # the reference first: others are relative to it
        cells = efficiency.in_run_order(cells, resolved.suite.reference_model)
    if run_log is not None:
        todo = [c for c in cells if not complete(latest.get(c))]
        run_log.begin(todo, len(cells) - len(todo))
    for cell in cells:
        if complete(latest.get(cell)):
            log.info("%s: already ok, skipped on resume", cell)
            continue
        if cell.task not in data_by_task:
            load = functools.partial(load_task_data, resolved, cell.task)
            data_by_task[cell.task] = run_log.load(cell.task, load) if run_log else load()
        before = load_average()
        record = run_cell(
            resolved,
            cell,
            data_by_task[cell.task],
            run_dir.name,
            progress,
            run_dir=run_dir,
            finished=latest,
        )
        record = with_load(record, before, load_average())
        store.append(record)
        if run_log is not None:
            run_log.cell_end(record)
        latest[cell] = record
        log.info("%s: %s %s %s", cell, record.status, record.reason, record.measurement_error)
    return [latest[cell] for cell in resolved.plan.cells() if cell in latest]


def complete(record: Record | None) -> bool:
    """An `ok` record whose measurements succeeded: nothing left to rerun."""
    return record is not None and record.status == "ok" and not record.measurement_error


def load_task_data(resolved: ResolvedPlan, task: str) -> TaskData | Exception:
    """The task's data, or the loader's exception (recorded in every cell of the task, with the
    traceback logged; DataUnavailable makes the cells `skipped`)."""
    cfg = resolved.configs[task].data
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
