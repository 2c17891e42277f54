"""Training cells side by side and timing them one at a time: the in-process launcher's schedule
with `workers` > 1 (`bench run --workers N`; by default one worker per core on CPU).

Cells need no other cell, so their training runs on a pool of forked worker processes (each with
the run's `--threads` torch threads, one by default), and so does the counting of their FLOPs
(deterministic: other work beside does not change it); the timing is not taken while another
cell runs: once every cell has trained, this process times them (latency, memory, the trace) one
after another, in plan order. Every record says how it was scheduled (`placement.schedule`).

- The same cell trains to the same weights, accuracy and loss curves under either schedule (a
  worker seeds and trains exactly as `bench.runner.cell.run_cell` does); only the training's own
  wall-clock figures (`train_time_s`, `examples_per_s`) were taken beside another cell.
- Records are appended as cells finish: a cell that fails to train at once, an ok cell when it
  has been timed.
- A trained cell waits for its timing in the run's staging directory (`<run>/staging/`, its
  weights and training results, written atomically). An interrupted run resumed with `--resume`
  times a staged cell without training it again (a staged file whose cell or config differs is
  discarded and the cell retrained); the file goes once the cell's record is appended.
- The data is loaded (or generated) here, before the pool forks: the workers share it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import Any

import torch

from bench.records import CellId, Record
from bench.runner.cell import (
    Trained,
    build,
    count_cell,
    measure_cell,
    record_identity,
    run_cell,
    train_cell,
)
from bench.runner.machine_load import load_average, with_load
from bench.runner.placement import with_placement
from bench.runner.plan import ResolvedPlan
from bench.runner.run_log import RunLog, duration
from bench.runner.task_data import load_task_data
from bench.train import TrainResult
from suites.atomic import write_atomic
from suites.data import TaskData
from suites.workers import bound_pool

log = logging.getLogger(__name__)

STAGING = "staging"  # <run dir>/staging/: trained cells waiting to be timed

SERIAL = {"train": "serial", "workers": 1, "timing": "after each cell's training"}


def parallel_schedule(workers: int) -> dict[str, Any]:
    """What a record of a cell trained beside others says of its schedule."""
    return {"train": "parallel", "workers": workers, "timing": "serial, after all training"}


def serial_only_reason(resolved: ResolvedPlan) -> str:
    """Why this run's cells cannot train on parallel workers ("" if they can): an efficiency
    suite trains nothing, and a language-modelling cell (`bench.runner.lm_cell`) trains and
    probes in one piece that the parallel schedule does not split."""
    if resolved.suite.kind == "efficiency":
        return "an efficiency suite only measures (nothing to train side by side)"
    if any(task.causal for task in resolved.tasks.values()):
        return "language-modelling cells train, probe and are measured one at a time"
    return ""


def auto_workers(plan_threads: int | None, device: str, resolved: ResolvedPlan) -> int:
    """The default worker count: one per `plan_threads` cores on CPU for a suite whose cells
    train side by side; one (the serial schedule) on CUDA, when `serial_only_reason` says so,
    or with torch's default threads."""
    if not device.startswith("cpu") or serial_only_reason(resolved) or plan_threads is None:
        return 1
    return max(1, (os.cpu_count() or 1) // plan_threads)


# What the forked workers read (set before the pool forks; never pickled through a queue).
_JOB: dict[str, Any] = {}


def run_parallel(
    resolved: ResolvedPlan,
    run_dir: Path,
    cells: Sequence[CellId],
    run_log: RunLog | None,
    workers: int,
    launcher: str,
) -> Iterator[Record]:
    """Yield a record for each of `cells`: data failures at once, training failures as they
    happen, ok cells once every cell has trained, timed one at a time in plan order."""
    schedule = parallel_schedule(workers)

    def placed(record: Record) -> Record:
        return with_placement(record, launcher, resolved.plan.device, schedule=schedule)

    data: dict[tuple[str, Any], TaskData | Exception] = {}
    for cell in cells:
        key = _data_key(resolved, cell)
        if key not in data:
            load = functools.partial(load_task_data, resolved, cell.task, cell.variant)
            data[key] = run_log.load(cell.task, load) if run_log else load()
    trainable = []
    for cell in cells:
        cell_data = data[_data_key(resolved, cell)]
        if isinstance(cell_data, Exception):  # skipped or error, as run_cell records it
            yield placed(run_cell(resolved, cell, cell_data, run_dir.name, run_dir=run_dir))
        else:
            trainable.append(cell)
    staged = {cell for cell in trainable if _valid_staged(resolved, run_dir, cell)}
    if staged and run_log is not None:
        run_log.say(f"{len(staged)} cell(s) trained by the interrupted run: timed, not retrained")
    to_train = [cell for cell in trainable if cell not in staged]
    threads = resolved.plan.threads or 1
    _JOB.update(resolved=resolved, data=data, run_dir=run_dir, threads=threads)
    try:
        if to_train:
            with bound_pool(min(workers, len(to_train))) as pool:
                futures = {pool.submit(_train_in_worker, cell): cell for cell in to_train}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        cell, outcome = futures[future], future.result()
                        if isinstance(outcome, Record):  # failed to train: its record now
                            yield placed(outcome)
                            continue
                        staged.add(cell)
                        if run_log is not None:
                            run_log.say(f"trained {cell} ({duration(outcome)}), timed later")
    finally:
        _JOB.clear()
    for cell in trainable:
        if cell not in staged:
            continue
        cell_data = data[_data_key(resolved, cell)]
        assert isinstance(cell_data, TaskData)  # trainable cells have their data
        trained = load_staged(resolved, run_dir, cell)
        before = load_average()
        record = measure_cell(resolved, cell, trained, cell_data, run_dir)
        yield placed(with_load(record, before, load_average()))
        staged_path(run_dir, cell).unlink()  # its record is appended: nothing left to resume


def _data_key(resolved: ResolvedPlan, cell: CellId) -> tuple[str, Any]:
    return (cell.task, resolved.config(cell.task, cell.variant).data)


def _train_in_worker(cell: CellId) -> Record | float:
    """In a worker: train the cell; its failure record, or the seconds it took (the trained
    cell is staged on disk)."""
    resolved, run_dir = _JOB["resolved"], _JOB["run_dir"]
    torch.set_num_threads(_JOB["threads"])
    identity = record_identity(resolved, cell, run_dir.name)
    trained = train_cell(resolved, cell, _JOB["data"][_data_key(resolved, cell)], identity)
    if isinstance(trained, Record):
        return trained
    trained = count_cell(resolved, cell, trained, _JOB["data"][_data_key(resolved, cell)])
    save_staged(run_dir, cell, trained)
    return trained.train_wall_s


def staged_path(run_dir: Path, cell: CellId) -> Path:
    """Where a trained cell waits for its timing (named by a digest of the cell's identity: a
    swept value may hold any character)."""
    digest = hashlib.sha256(str(cell).encode()).hexdigest()[:20]
    return run_dir / STAGING / f"{digest}.pt"


def save_staged(run_dir: Path, cell: CellId, trained: Trained) -> None:
    """Write a trained cell (weights, training results) atomically into the staging dir."""
    state = {
        "cell": str(cell),
        "identity": trained.identity,
        "counts": list(trained.counts),
        "result": dataclasses.asdict(trained.result),
        "phases": trained.phases,
        "train_wall_s": trained.train_wall_s,
        "counted": trained.counted,
        "count_failure": trained.count_failure,
        "state_dict": trained.model.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = staged_path(run_dir, cell)
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))


def load_staged(resolved: ResolvedPlan, run_dir: Path, cell: CellId) -> Trained:
    """A staged cell, its model rebuilt with its trained weights."""
    state = torch.load(staged_path(run_dir, cell), weights_only=True)
    torch.manual_seed(cell.seed)
    model = build(resolved, cell)
    model.load_state_dict(state["state_dict"])
    model.to(torch.device(resolved.plan.device))
    result = TrainResult(**state["result"])
    counts = (int(state["counts"][0]), int(state["counts"][1]))
    return Trained(
        model,
        state["identity"],
        counts,
        result,
        state["phases"],
        state["train_wall_s"],
        state["counted"],
        state["count_failure"],
    )


def _valid_staged(resolved: ResolvedPlan, run_dir: Path, cell: CellId) -> bool:
    """Whether a staged file holds this cell at its current config; a stale one is removed."""
    path = staged_path(run_dir, cell)
    if not path.exists():
        return False
    state = torch.load(path, weights_only=True)
    config = resolved.cell_config(cell.task, cell.variant, cell.model)
    if state.get("cell") == str(cell) and state["identity"].get("config") == config:
        return True
    log.warning("%s: its staged training was for another config; retrained", cell)
    path.unlink()
    return False
