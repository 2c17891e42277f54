"""The Ray launcher on a real local Ray instance (2 CPUs, no dashboard, bound to 127.0.0.1):
its records' deterministic figures equal the in-process launcher's; a worker killed by PID
mid-cell is retried, and with no retries left becomes an error naming the node; a driver
killed mid-run and resumed ends with every cell exactly once. Skipped when ray is absent."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from bench.runner.ray_options import LOOPBACK_ENV

if "ray" not in sys.modules:  # read when ray is imported: bind the local instance to loopback
    os.environ.setdefault(LOOPBACK_ENV, "0")
# Ray starts workers at nice 15; on a CI machine shared with other jobs they would starve.
os.environ.setdefault("RAY_worker_niceness", "0")
ray = pytest.importorskip("ray")

from bench import registries  # noqa: E402
from bench.cli import main  # noqa: E402
from bench.records import read_records  # noqa: E402
from bench.run_plan import RunPlan  # noqa: E402
from bench.runner import execute, resolve, start  # noqa: E402
from bench.runner.ray_launch import RayLauncher  # noqa: E402
from bench.runner.ray_options import RayOptions  # noqa: E402

SMALL = [
    *("--set", "data.n_train=128", "--set", "data.n_dev=32", "--set", "data.n_test=64"),
    *("--set", "train.steps=20", "--set", "train.eval_every=10"),
]
# Equal under any launcher on one machine at one thread count. Losses are compared to 1e-5
# relative: switch's CPU training reorders float32 sums between runs (seen: 1e-7 relative in
# train_loss_final, accuracy equal), as CI's own smoke gate allows (--rel-tol 1e-2).
DETERMINISTIC = ("accuracy", "dev_accuracy", "best_step")
LOSSES = ("train_loss_final", "loss_curve")


@pytest.fixture(scope="module")
def cluster():
    """One local instance for the module: 2 CPUs, no dashboard, on 127.0.0.1 only."""
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        (node,) = ray.nodes()
        assert node["NodeManagerAddress"] == "127.0.0.1", "the test instance must be loopback"
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _run(out: Path, run_id: str, *extra: str) -> int:
    return main(
        [
            "run",
            *("--suite", "smoke", "--out", str(out), "--run-id", run_id, "--no-progress"),
            *("--cache-dir", str(out / "cache")),
            *SMALL,
            *extra,
        ]
    )


def _figures(records, tolerant: bool = False) -> dict:
    """(status, params, deterministic figures, FLOPs) per cell; `tolerant` wraps the losses in
    pytest.approx (one side of a comparison only)."""
    out = {}
    for r in records:
        flops = {k: v for k, v in r.metrics.items() if k.startswith("flops_")}
        kept = {k: r.metrics[k] for k in DETERMINISTIC}
        for k in LOSSES:
            kept[k] = pytest.approx(r.metrics[k], rel=1e-5) if tolerant else r.metrics[k]
        out[(r.task, r.model, r.seed)] = (r.status, r.params_total, r.params_active, kept, flops)
    return out


def _explain(mine: dict, theirs: dict) -> str:
    """Which figures of which cells differ (pytest truncates the dicts' own diff)."""
    lines = []
    for cell in mine:
        status, total, _active, kept, flops = mine[cell]
        other = theirs[cell]
        for name, a, b in (("status", status, other[0]), ("params", total, other[1])):
            if a != b:
                lines.append(f"{cell} {name}: {a} != {b}")
        for figures, others in ((kept, other[3]), (flops, other[4])):
            for k in figures.keys() | others.keys():
                if figures.get(k) != others.get(k):
                    lines.append(
                        f"{cell} {k}: {str(figures.get(k))[:120]} != {str(others.get(k))[:120]}"
                    )
    return "\n".join(lines)


def test_smoke_under_ray_gives_the_in_process_figures(cluster, tmp_path) -> None:
    # --threads 2, the whole 2-CPU node: the kernel choice depends on the thread count
    cells = ("--models", "switch,uoe", "--tasks", "majority,match", "--threads", "2")
    threads = torch.get_num_threads()
    try:
        assert _run(tmp_path, "here", *cells) == 0
    finally:
        torch.set_num_threads(threads)  # bench run sets the process's threads
    assert _run(tmp_path, "ray", *cells, "--launcher", "ray") == 0
    here, there = read_records(tmp_path / "here"), read_records(tmp_path / "ray")
    assert len(there) == 4
    mine, theirs = _figures(there), _figures(here, tolerant=True)
    assert mine.keys() == theirs.keys()
    assert mine == theirs, _explain(mine, theirs)
    for r in there:
        assert r.placement["launcher"] == "ray"
        assert r.placement["node_ip"] == "127.0.0.1"
        assert r.placement["device_shared"] is False
        assert r.placement["torch_threads"] == 2
        assert r.placement["device_name"] == here[0].placement["device_name"]
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["launcher"]["name"] == "ray"
    assert manifest["launcher"]["cluster_resources"]["CPU"] == 2.0


def test_cells_trained_side_by_side_give_the_ray_figures(cluster, tmp_path) -> None:
    # one thread per cell under both: two in-process workers, Ray's one cell per node
    cells = ("--models", "switch,uoe", "--tasks", "majority,match", "--threads", "1")
    threads = torch.get_num_threads()
    try:
        assert _run(tmp_path, "here", *cells, "--workers", "2") == 0
    finally:
        torch.set_num_threads(threads)
    assert _run(tmp_path, "ray", *cells, "--launcher", "ray") == 0
    here, there = read_records(tmp_path / "here"), read_records(tmp_path / "ray")
    mine, theirs = _figures(there), _figures(here, tolerant=True)
    assert len(mine) == 4 and mine.keys() == theirs.keys()
    assert mine == theirs, _explain(mine, theirs)
    assert {r.placement["schedule"]["train"] for r in here} == {"parallel"}
    assert {r.placement["schedule"]["train"] for r in there} == {"one Ray task per cell"}


def test_shared_cpu_cells_are_flagged(cluster, tmp_path) -> None:
    extra = ("--models", "switch", "--tasks", "majority", "--set", "train.steps=4")
    assert _run(tmp_path, "r", *extra, "--launcher", "ray", "--share-device") == 0
    (record,) = read_records(tmp_path / "r")
    assert record.placement["device_shared"] is True
    assert record.placement["torch_threads"] == 1
    assert _run(tmp_path, "x", *extra, "--share-device") == 2  # needs --launcher ray


def _plan(steps: int) -> RunPlan:
    return RunPlan(
        suite="smoke",
        scale="tiny",
        models=("switch",),
        tasks=("majority",),
        seeds=(0,),
        overrides=(f"train.steps={steps}", "data.n_train=128", "data.n_test=64"),
    )


def _kill_first_attempt(launcher: RayLauncher, plan: RunPlan, run_dir: Path) -> list:
    """Run the plan in a thread; SIGKILL the worker process of the cell's first attempt."""
    registries.discover()
    resolved = resolve(plan)
    start(resolved, run_dir)
    result: list = []
    thread = threading.Thread(target=lambda: result.extend(execute(resolved, run_dir, launcher)))
    thread.start()
    deadline = time.monotonic() + 120
    killed = None
    while time.monotonic() < deadline and thread.is_alive() and killed is None:
        starts = launcher.starts()
        if starts:
            (attempts,) = starts.values()
            time.sleep(0.5)  # mid-cell: past the start, far from the end
            killed = attempts[0]["pid"]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    thread.join(timeout=300)
    assert killed is not None, "the cell never started"
    return result


def test_a_worker_killed_mid_cell_is_retried_and_the_run_completes(cluster, tmp_path) -> None:
    launcher = RayLauncher(RayOptions(max_retries=1, show_progress=False))
    (record,) = _kill_first_attempt(launcher, _plan(steps=400), tmp_path / "r")
    assert record.status == "ok", record.reason
    (attempts,) = launcher.starts().values()
    assert len(attempts) == 2
    assert attempts[0]["pid"] != attempts[1]["pid"]
    assert record.placement["pid"] == attempts[1]["pid"]
    assert len((tmp_path / "r" / "records.jsonl").read_text().splitlines()) == 1


def test_a_worker_killed_with_no_retry_left_is_an_error_naming_the_node(cluster, tmp_path) -> None:
    launcher = RayLauncher(RayOptions(max_retries=0, show_progress=False))
    (record,) = _kill_first_attempt(launcher, _plan(steps=400), tmp_path / "r")
    assert record.status == "error"
    hostname = launcher.starts()[str(record.cell)][0]["hostname"]
    assert f"worker on node {hostname} (127.0.0.1) failed after 1 attempt(s)" in record.reason
    assert "--max-retries 0" in record.reason
    assert read_records(tmp_path / "r") == [record]


def _children(pid: int) -> list[int]:
    """Every descendant process of `pid` (from /proc), to stop by PID what a killed driver
    might leave behind."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for path in Path(f"/proc/{parent}/task").glob("*/children"):
            kids = [int(k) for k in path.read_text().split()]
            out += kids
            todo += kids
    return out


def test_a_killed_driver_resumed_ends_with_every_cell_exactly_once(cluster, tmp_path) -> None:
    base = [
        *(sys.executable, "-m", "bench.cli", "run"),
        *("--launcher", "ray", "--ray-address", cluster, "--no-progress"),
    ]
    plan = [
        *(
            "--suite",
            "smoke",
            "--models",
            "switch,uoe",
            "--tasks",
            "majority,first",
            "--seeds",
            "0,1",
        ),
        *("--out", str(tmp_path), "--run-id", "killed", "--cache-dir", str(tmp_path / "cache")),
        *SMALL,
    ]
    driver = subprocess.Popen([*base, *plan], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "killed" / "records.jsonl"
    left: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            if records.exists() and records.read_text().count("\n") >= 1:
                left = _children(driver.pid)
                driver.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        driver.wait(timeout=60)
    finally:
        for pid in [driver.pid, *left]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert driver.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    before = len(records.read_text().splitlines())
    assert 0 < before < 8
    resumed = subprocess.run(
        [*base, "--resume", str(tmp_path / "killed")], capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    counts = collections.Counter((r["task"], r["model"], r["seed"]) for r in lines)
    planned = {(t, m, s) for t in ("majority", "first") for m in ("switch", "uoe") for s in (0, 1)}
    assert set(counts) == planned
    assert set(counts.values()) == {1}, counts
    assert all(r["status"] == "ok" for r in lines)
