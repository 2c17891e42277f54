"""Shared pieces of the fault-injection tests: tiny smoke-suite runs (in process or as a child
`bench` process that can be signalled or killed) and small data files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from suites.data import DataRequest, TaskData

# A smoke cell in well under a second or two: few steps, tiny splits (measurements stubbed:
# bench_child.py, or the `no_measurements` fixture in process).
TINY = [
    *("--suite", "smoke", "--scale", "tiny", "--models", "full_attention", "--no-progress"),
    *("--set", "train.steps=4", "--set", "train.eval_every=2", "--set", "train.warmup_steps=1"),
    *("--set", "data.n_train=64", "--set", "data.n_dev=16", "--set", "data.n_test=16"),
]
# Slower cells (a second or so each on a quiet machine), for tests that must catch a run mid-cell.
SLOW_CELLS = [
    *("--suite", "smoke", "--scale", "tiny", "--models", "full_attention", "--no-progress"),
    *("--set", "train.steps=20", "--set", "train.eval_every=10"),
    *("--set", "data.n_train=256", "--set", "data.n_dev=32", "--set", "data.n_test=32"),
    # One cell at a time, so a record lands while later cells still run (the parallel schedule
    # appends ok cells only after all have trained: tests/test_parallel_schedule.py stops that)
    *("--workers", "1"),
]


def run_args(tmp_path: Path, run_id: str = "r", *extra: str) -> list[str]:
    return [
        "run",
        "--out",
        str(tmp_path / "runs"),
        "--run-id",
        run_id,
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    ]


CHILD = Path(__file__).with_name("bench_child.py")


def bench_process(argv: list[str], **kw) -> subprocess.Popen:
    """`bench ARGV` as a child process running the code under test (this PYTHONPATH), through
    bench_child.py (one thread, measurements stubbed: cells of about a second)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(CHILD), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def record_lines(run_dir: Path) -> list[str]:
    path = run_dir / "records.jsonl"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stub_measurements(monkeypatch) -> None:
    """In process: a cell's measurements return nothing (as bench_child.py does)."""
    from bench.measure.cell import Measurements
    from bench.runner import cell

    monkeypatch.setattr(cell, "_measure", lambda *args, **kwargs: Measurements({}, {}))


def tree_state(root: Path, *skip: Path) -> dict[str, tuple]:
    """Every entry under `root` (links not followed; the folders `skip` left out) with its kind,
    bytes, mode and mtime: equal before and after means nothing there was written, created,
    truncated or touched."""
    state: dict[str, tuple] = {}
    skipped = {Path(p) for p in skip}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skipped]
        for name in dirnames + filenames:
            path = here / name
            st = path.lstat()
            if path.is_symlink():
                content = os.readlink(path).encode()
            elif path.is_file():
                content = path.read_bytes()
            else:
                content = b""
            state[str(path.relative_to(root))] = (st.st_mode, st.st_mtime_ns, content)
    return state


def listops_request(cache: Path) -> DataRequest:
    """A small ListOps request (40/10/10 examples of length 64) cached under `cache`."""
    return DataRequest(max_len=64, n_train=40, n_dev=10, n_test=10, seed=0, cache_dir=cache)


def same_task_data(a: TaskData, b: TaskData) -> bool:
    """Every split of `a` and `b` holds the same inputs and labels."""
    return all(
        torch.equal(getattr(a, s).labels, getattr(b, s).labels)
        and all(
            torch.equal(x, y)
            for x, y in zip(getattr(a, s).inputs, getattr(b, s).inputs, strict=True)
        )
        for s in ("train", "dev", "test")
    )
