"""What runs on a Ray worker: the task of one cell (resolve the plan there, load the data there,
run the cell, say where it ran) and the `Tracker` actor the workers tell when each attempt of a
cell starts. Both are handed to Ray by `bench.runner.ray_launch.RayLauncher`.

Data: each worker loads its cell's data itself, with the same loader and seeded key as the
in-process launcher: generated data is the same bytes on every node (and cached atomically in
`--cache-dir`, so a shared cache is generated once), and downloaded data is read where it lies,
never shipped through the driver (LRA's image tasks are GBs). A node that cannot find it writes
a `skipped` record naming the node and the path the loader looked in.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any

import torch

from bench import registries
from bench.records import CellId, Record
from bench.run_plan import RunPlan
from bench.runner.cell import run_cell
from bench.runner.machine_load import load_average, with_load
from bench.runner.placement import with_placement
from bench.runner.plan import resolve
from bench.runner.task_data import load_task_data
from suites.data import DataUnavailable


class Tracker:
    """A Ray actor the workers tell when (and in which process) each attempt of a cell starts:
    the driver's count of running cells, the node named in a crash record, a test's PID."""

    def __init__(self) -> None:
        self.starts: dict[str, list[dict[str, Any]]] = {}

    def started(self, cell: str, where: dict[str, Any]) -> None:
        self.starts.setdefault(cell, []).append(where)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return self.starts


def torch_threads(plan: RunPlan, cpus: float) -> int:
    """A cell's torch threads: the run's `--threads` (as in-process, so that the kernel choice
    and the figures agree between launchers), else the CPUs the cell reserved."""
    return plan.threads if plan.threads is not None else max(1, int(cpus))


def run_cell_on_worker(
    plan: RunPlan,
    cell: CellId,
    run_dir: str,
    threads: int,
    shared: bool,
    tracker: Any,
) -> Record:
    """The Ray task of one cell: resolve the plan here, load the data here, run the cell."""
    import ray  # here, on the worker: the driver imports ray only through import_ray

    gpu_ids = ray.get_gpu_ids()
    where = {
        "hostname": platform.node(),
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "gpu_index": int(gpu_ids[0]) if gpu_ids else None,
    }
    tracker.started.remote(str(cell), where)
    torch.set_num_threads(threads)
    registries.discover()
    # Ray sets CUDA_VISIBLE_DEVICES to the reserved GPU: it is cuda:0 in this process.
    local_plan = (
        dataclasses.replace(plan, device="cuda") if plan.device.startswith("cuda") else plan
    )
    resolved = resolve(local_plan)
    data = load_task_data(resolved, cell.task, cell.variant)
    if isinstance(data, DataUnavailable):
        data = DataUnavailable(f"on node {where['hostname']} ({where['node_ip']}): {data}")
    before = load_average()
    record = run_cell(resolved, cell, data, Path(run_dir).name, None, run_dir=Path(run_dir))
    record = with_load(record, before, load_average())
    return with_placement(
        record,
        "ray",
        local_plan.device,
        device_shared=shared,
        torch_threads=threads,
        schedule=RAY_SCHEDULE,
        **where,
    )


# A cell is timed in its own task right after its training; another cell may run on another
# node meanwhile (on the same node only with --share-device, which flags the record).
RAY_SCHEDULE = {"train": "one Ray task per cell", "timing": "in the cell's task, after training"}
