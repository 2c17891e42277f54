"""The Ray launcher: each cell is a Ray task with declared resources, on a local Ray instance
(this machine's CPUs and GPUs) or an existing cluster (`--ray-address`). The driver stays the
single writer of `records.jsonl`; this module only yields each record as its task finishes.
Beside it: `ray_options` (the options, and how ray is imported), `ray_worker` (what runs on a
worker, the tracker actor) and `ray_progress` (the bar over cells).

Placement and timing honesty: on CUDA a cell reserves one GPU (`--gpus-per-cell`), so it has
its device to itself; on CPU a cell gets a whole node (the driver runs at most one cell per
node, pinned there, running `--threads` torch threads, default 1), unless `--share-device`
lets Ray pack cells by `--cpus-per-cell`; then every record is flagged `device_shared` (and so
is a GPU share below 1). Records say where they ran (host, node, device name, GPU index).

Data: each worker loads its cell's data itself (`bench.runner.ray_worker`), never shipped
through the driver; a node that cannot find it writes a `skipped` record naming the node.

Faults: a worker process that dies mid-cell is rerun by Ray up to `max_retries` times, then the
cell is an `error` record naming the node; a worker killed by Ray's memory monitor is `oom`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.records import CellId, Record
from bench.run_plan import RunPlan
from bench.runner.cell import ProgressFactory, record_identity
from bench.runner.plan import ResolvedPlan
from bench.runner.ray_options import RayOptions, connect_timeout_s, import_ray, wait_for_address
from bench.runner.ray_progress import CellBar
from bench.runner.ray_worker import Tracker, run_cell_on_worker, torch_threads
from bench.runner.run_log import RunLog
from models.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class _Flight:
    cell: CellId
    node: dict[str, Any] | None  # the node it is pinned to (exclusive CPU mode)


class RayLauncher:
    """Cells as Ray tasks; see the module docstring for placement, data and faults."""

    name = "ray"

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        ray = self._ray = import_ray(local=options.address is None)
        self._owns_instance = not ray.is_initialized()
        if self._owns_instance:
            if options.address:
                wait_for_address(options.address, connect_timeout_s(), _say)
                ray.init(address=options.address, log_to_driver=True)
            else:
                ray.init(
                    num_cpus=options.local_cpus,
                    num_gpus=options.local_gpus,
                    include_dashboard=False,
                )
        self._check_feasible()
        self._task = ray.remote(run_cell_on_worker)
        self._tracker = ray.remote(num_cpus=0)(Tracker).remote()

    # -- what the manifest records

    def describe(self) -> dict[str, Any]:
        ray = self._ray
        return {
            "name": self.name,
            "address": ray.get_runtime_context().gcs_address,
            "cluster_resources": ray.cluster_resources(),
            "nodes": [
                {
                    "node_ip": n["NodeManagerAddress"],
                    "hostname": n.get("NodeManagerHostname"),
                    "resources": n["Resources"],
                }
                for n in ray.nodes()
                if n["Alive"]
            ],
            "options": dataclasses.asdict(self.options),
        }

    def starts(self) -> dict[str, list[dict[str, Any]]]:
        """{cell: [where each attempt started]} as the workers reported them."""
        return self._ray.get(self._tracker.snapshot.remote())

    # -- running

    def run(
        self,
        resolved: ResolvedPlan,
        run_dir: Path,
        cells: Sequence[CellId],
        progress: ProgressFactory | None,
        run_log: RunLog | None = None,
    ) -> Iterator[Record]:
        # Per-step bars do not cross processes (one bar over cells instead), and the workers
        # load their own data: the driver's run log only sees the records.
        del progress, run_log
        bar = CellBar(len(cells)) if self.options.show_progress and cells else None
        try:
            yield from self._run_cells(resolved, run_dir, cells, bar)
        finally:
            if bar is not None:
                bar.close()

    def _run_cells(
        self,
        resolved: ResolvedPlan,
        run_dir: Path,
        cells: Sequence[CellId],
        bar: CellBar | None,
    ) -> Iterator[Record]:
        ray = self._ray
        queue = collections.deque(cells)
        in_flight: dict[Any, _Flight] = {}
        try:
            while queue or in_flight:
                self._submit(resolved.plan, run_dir, queue, in_flight)
                if not in_flight:
                    raise RuntimeError(
                        f"no alive node of the Ray cluster can take a cell "
                        f"(cluster: {ray.cluster_resources()})"
                    )
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                starts = self.starts() if ready or bar else {}
                for ref in ready:
                    flight = in_flight.pop(ref)
                    record = self._collect(ref, flight, resolved, run_dir, starts)
                    if bar is not None:
                        bar.finished(record)
                    yield record
                if bar is not None:
                    running = sum(1 for f in in_flight.values() if str(f.cell) in starts)
                    bar.counts(running, len(in_flight) - running + len(queue))
        finally:
            for ref in in_flight:  # the driver stopped: leave nothing running for it
                ray.cancel(ref, force=True)

    def _submit(
        self,
        plan: RunPlan,
        run_dir: Path,
        queue: collections.deque[CellId],
        in_flight: dict[Any, _Flight],
    ) -> None:
        options = self.options
        if not options.exclusive_cpu_nodes:
            while queue:
                cpus = options.cpus_per_cell or 1.0
                gpus = (options.gpus_per_cell or 1.0) if options.on_gpu else 0.0
                cell = queue.popleft()
                task = self._task.options(
                    num_cpus=cpus, num_gpus=gpus, max_retries=options.max_retries
                )
                ref = task.remote(
                    plan,
                    cell,
                    str(run_dir),
                    torch_threads(plan, cpus),
                    options.device_shared,
                    self._tracker,
                )
                in_flight[ref] = _Flight(cell, None)
            return
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        busy = {f.node["NodeID"] for f in in_flight.values() if f.node}
        for node in self._cpu_nodes():
            if not queue:
                return
            if node["NodeID"] in busy:
                continue
            cpus = options.cpus_per_cell or node["Resources"]["CPU"]
            cell = queue.popleft()
            task = self._task.options(
                num_cpus=cpus,
                max_retries=options.max_retries,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            )
            ref = task.remote(
                plan, cell, str(run_dir), torch_threads(plan, cpus), False, self._tracker
            )
            in_flight[ref] = _Flight(cell, node)

    def _check_feasible(self) -> None:
        """Refuse a cell no node can hold (Ray would queue it forever)."""
        o = self.options
        cpus = o.cpus_per_cell or 1.0
        gpus = (o.gpus_per_cell or 1.0) if o.on_gpu else 0.0
        nodes = [n["Resources"] for n in self._ray.nodes() if n["Alive"]]
        if not any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
            raise InputError(
                f"no node of the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s) for a cell "
                f"(nodes: {nodes}); lower --cpus-per-cell / --gpus-per-cell"
            )

    def _cpu_nodes(self) -> list[dict[str, Any]]:
        need = self.options.cpus_per_cell or 1.0
        return [n for n in self._ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) >= need]

    def _collect(
        self,
        ref: Any,
        flight: _Flight,
        resolved: ResolvedPlan,
        run_dir: Path,
        starts: dict[str, list[dict[str, Any]]],
    ) -> Record:
        """The task's record, or an error / oom record naming the node when Ray gave up."""
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            attempts = starts.get(str(flight.cell), [])
            where = dict(attempts[-1]) if attempts else {}
            if not where and flight.node:
                where = {
                    "node_ip": flight.node["NodeManagerAddress"],
                    "node_id": flight.node["NodeID"],
                }
            node = f"{where.get('hostname', '?')} ({where.get('node_ip', '?')})"
            first_line = (str(exc).strip().splitlines() or [""])[0]
            if isinstance(exc, ray.exceptions.OutOfMemoryError):
                status = "oom"
                reason = (
                    f"out of memory: Ray's memory monitor killed the worker on node {node}; "
                    f"lower train.batch_size or data.max_len, or raise --cpus-per-cell"
                )
            else:
                status = "error"
                reason = (
                    f"worker on node {node} failed after {len(attempts)} attempt(s) "
                    f"(--max-retries {self.options.max_retries}): {type(exc).__name__}: "
                    f"{first_line}"
                )
            log.error("%s: %s", flight.cell, reason)
            return _failed_record(resolved, flight.cell, run_dir.name, status, reason, where)

    def close(self) -> None:
        if self._owns_instance:
            self._ray.shutdown()
        else:
            self._ray.kill(self._tracker)


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _failed_record(
    resolved: ResolvedPlan, cell: CellId, run_id: str, status: str, reason: str, where: dict
) -> Record:
    return Record(
        **record_identity(resolved, cell, run_id),
        status=status,
        reason=reason,
        placement={"launcher": "ray", "device": resolved.plan.device, **where},
    )
