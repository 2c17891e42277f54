"""Launchers: what runs a plan's pending cells and hands their records back to the driver.

The driver (`bench.runner.execute`) stays the single writer of `records.jsonl`: a launcher only
yields each cell's record as it finishes, and the driver appends it before asking for the next,
so resume and every record rule are the same under every launcher.

- `InProcessLauncher` (`bench run`'s default): with one worker, every cell in order in this
  process, each distinct data request loaded once (the runner's historical behaviour); with
  more, the cells train side by side on forked workers and are timed one at a time afterwards
  (`bench.runner.parallel`).
- `bench.runner.ray_launch.RayLauncher`: cells as Ray tasks on a local instance or a cluster
  (imported only when asked for, so ray stays an optional extra).

`make_launcher` makes the one a run's `LaunchOptions` (`bench.runner.launch_options`) ask for.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from bench.records import CellId, Record
from bench.runner.cell import ProgressFactory, run_cell
from bench.runner.launch_options import LaunchOptions
from bench.runner.machine_load import load_average, with_load
from bench.runner.parallel import SERIAL, run_parallel, serial_only_reason
from bench.runner.placement import with_placement
from bench.runner.plan import ResolvedPlan
from bench.runner.run_log import RunLog
from bench.runner.task_data import load_task_data
from models.errors import InputError
from suites.data import TaskData


class Launcher(Protocol):
    """Runs cells and yields one record per cell, in the order they finish."""

    name: str

    def describe(self) -> dict[str, Any]:
        """What the manifest records of where the run's cells go (e.g. the cluster's resources)."""
        ...

    def run(
        self,
        resolved: ResolvedPlan,
        run_dir: Path,
        cells: Sequence[CellId],
        progress: ProgressFactory | None,
        run_log: RunLog | None = None,
    ) -> Iterator[Record]:
        """Yield a record for each of `cells`, in any order (no cell needs another's record).
        `run_log` announces data loading where the data is loaded in the driver's process."""
        ...

    def close(self) -> None: ...


class InProcessLauncher:
    """Every cell in order in this process, each distinct data request loaded once; with
    `workers` > 1 (CPU, a suite that trains) the training runs on that many forked workers and
    the timing in this process afterwards, one cell at a time (`bench.runner.parallel`)."""

    name = "in_process"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InputError(f"--workers {workers}: give 1 or more")
        self.workers = workers

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": platform.node(),
            "cpu_count": os.cpu_count(),
            "workers": self.workers,
        }

    def run(
        self,
        resolved: ResolvedPlan,
        run_dir: Path,
        cells: Sequence[CellId],
        progress: ProgressFactory | None,
        run_log: RunLog | None = None,
    ) -> Iterator[Record]:
        if self.workers > 1 and len(cells) > 1 and not serial_only_reason(resolved):
            # per-step bars do not cross processes: the run log's lines say the progress
            yield from run_parallel(resolved, run_dir, cells, run_log, self.workers, self.name)
            return
        data: dict[tuple[str, Any], TaskData | Exception] = {}
        for cell in cells:
            key = (cell.task, resolved.config(cell.task, cell.variant).data)
            if key not in data:
                load = functools.partial(load_task_data, resolved, cell.task, cell.variant)
                data[key] = run_log.load(cell.task, load) if run_log else load()
            before = load_average()
            record = run_cell(resolved, cell, data[key], run_dir.name, progress, run_dir=run_dir)
            record = with_load(record, before, load_average())
            yield with_placement(record, self.name, resolved.plan.device, schedule=SERIAL)

    def close(self) -> None:
        pass


def make_launcher(options: LaunchOptions, device: str) -> Launcher:
    """The launcher `options` ask for, its cells on `device` (the Ray launcher starts or joins
    its Ray instance here: the caller closes it)."""
    if options.launcher == "in_process":
        return InProcessLauncher(options.workers)
    from bench.runner.ray_launch import RayLauncher
    from bench.runner.ray_options import RayOptions

    given = {} if options.max_retries is None else {"max_retries": options.max_retries}
    ray_options = RayOptions(
        address=options.ray_address,
        device=device,
        cpus_per_cell=options.cpus_per_cell,
        gpus_per_cell=options.gpus_per_cell,
        share_device=options.share_device,
        show_progress=options.show_progress,
        **given,
    )
    return RayLauncher(ray_options)
