"""Histories for the history tests: a throwaway git repository of empty commits (real shas, so
the order is git's) and runs copied from the report fixture with their commit, machine and
figures set: every timing scaled by seeded noise (10 % for the run, as a machine's load moves
all its cells, times 5 % per cell), one series stepped where a test plants it,
the whole machine slowed or its cells flagged busy where a test says so."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from bench.records import BUSY_KEY, RecordStore, read_records

BASE = Path(__file__).parent / "fixtures" / "report" / "lra"
TIMED = ("text", "linformer")  # the cell whose training-step time a test doubles
COUNTED = ("listops", "switch")  # the cell whose forward FLOPs a test doubles
TIMINGS = ("latency_train_step_s_median", "latency_infer_s_median", "train_time_s")


def make_repo(path: Path, commits: int) -> list[str]:
    """A git repository of `commits` empty commits a day apart; their shas, oldest first."""
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    shas = []
    for i in range(commits):
        date = f"2026-01-{i + 1:02d}T12:00:00+00:00"
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", f"c{i}"], check=True, env=env)
        out = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        )
        shas.append(out.stdout.strip())
    return shas


def make_run(
    out: Path,
    run_id: str,
    sha: str,
    rng: np.random.Generator,
    *,
    cpu: str = "Fixture CPU",
    timing_factor: float = 1.0,
    all_timings_factor: float = 1.0,
    flops_factor: float = 1.0,
    dirty: bool = False,
    busy: bool = False,
) -> Path:
    """A copy of the report fixture run as run `run_id` at commit `sha` on CPU `cpu`."""
    run = out / run_id
    shutil.copytree(BASE, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["run_id"] = run_id
    manifest["environment"] = {
        "cpu": cpu, "cpu_capability": "AVX2", "torch": "2.13.0+cpu", "torch_threads": 1,
        "git_sha": sha, "git_dirty": dirty,
    }  # fmt: skip
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "records.jsonl").unlink()
    store = RecordStore(run)
    machine_noise = float(np.exp(0.1 * rng.standard_normal()))  # the run's load: every cell
    for record in read_records(BASE):
        metrics = dict(record.metrics)
        noise = machine_noise * float(np.exp(0.05 * rng.standard_normal()))
        for name in TIMINGS:
            if name in metrics:
                factor = noise * all_timings_factor
                factor *= timing_factor if (record.task, record.model) == TIMED else 1.0
                metrics[name] = metrics[name] * factor
                samples = name.removesuffix("_median") + "_samples"
                if name.endswith("_median") and samples in metrics:
                    metrics[samples] = [s * factor for s in metrics[samples]]
        if busy:
            metrics[BUSY_KEY] = "load average 5 > 2 cores: its timings are noise"
        if (record.task, record.model) == COUNTED and "flops_fwd_per_example" in metrics:
            metrics["flops_fwd_per_example"] *= flops_factor
        store.append(dataclasses.replace(record, run_id=run_id, metrics=metrics))
    return run
