"""The history store: one compact JSON-lines file per added run, under
`<history>/runs/<machine key>/`, named by its commit and run id. Its first line is the run (commit,
commit date, run date, machine, suite, scale, overrides); every other line one figure of one ok
cell: (task, model, seed, variant, figure, value, samples summary, busy flag), and each timing
also as a ratio to the run's reference model in the same cell (task, seed, variant): measured in
one run, the ratio keeps its meaning when the machine's load moves between runs. Adding a run
whose file holds the same content is a no-op; files are written atomically. Reads with pandas,
no torch.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bench.manifest import Manifest, read_manifest
from bench.metric_catalog import MetricCatalog, catalog_for
from bench.records import BUSY_KEY, Record, read_records
from models.errors import InputError
from suites.atomic import write_text_atomic
from suites.metric import Metric

RUNS_DIR = "runs"
# Columns of `read_history`'s frame: the run's, then the figure row's.
RUN_COLUMNS = (
    *("run_id", "git_sha", "git_dirty", "commit_date", "run_date", "machine_key", "suite"),
    *("scale", "config"),
)
POINT_COLUMNS = (
    *("task", "model", "seed", "variant", "figure", "value", "n", "low", "q1", "q3", "high"),
    *("busy", "relative_to"),
)
Added = Literal["added", "unchanged", "updated"]


@dataclass(frozen=True)
class Machine:
    """What a timing depends on beyond the code: CPU (or GPU) name, the vector ISA torch's CPU
    kernels use, torch's version and the intra-op thread count. Series are split by its key, so a
    new runner starts new series instead of reading as a regression."""

    cpu: str
    cpu_capability: str
    torch: str
    threads: int
    gpu: str = ""

    @property
    def key(self) -> str:
        """A readable, file-name-safe key: 'AMD-EPYC_AVX2_torch2.13.0+cpu_t1'."""
        device = self.gpu or self.cpu
        text = f"{device}_{self.cpu_capability}_torch{self.torch}_t{self.threads}"
        return re.sub(r"[^A-Za-z0-9.+_-]+", "-", text).strip("-")

    @classmethod
    def of(cls, manifest: Manifest) -> Machine:
        env = manifest.environment
        missing = [k for k in ("cpu", "cpu_capability", "torch", "torch_threads") if k not in env]
        if missing:
            raise InputError(
                f"run {manifest.run_id}: its manifest's environment lacks {', '.join(missing)}, "
                "so its machine is unknown; rerun it with this uoe-bench to add it to the history"
            )
        gpu = env.get("gpu_name") if manifest.plan.device.startswith("cuda") else ""
        return cls(
            str(env["cpu"]), str(env["cpu_capability"]), str(env["torch"]),
            int(env["torch_threads"]), str(gpu or ""),
        )  # fmt: skip


@dataclass(frozen=True)
class RunEntry:
    """The first line of a history file: which run, at which commit, on which machine."""

    run_id: str
    git_sha: str
    git_dirty: bool
    commit_date: str | None  # committer date (ISO 8601) when the repository knew the commit
    run_date: str
    machine_key: str
    machine: Mapping[str, Any]
    suite: str
    scale: str
    config: str  # the run's --set overrides, "" for the suite's defaults: its own series
    suite_metrics: tuple[Mapping[str, Any], ...] = ()  # the suite's own figures (Metric.to_dict)


@dataclass(frozen=True)
class Point:
    """One figure of one ok cell: its value and, for a timing, the summary of its raw samples
    (n, lowest, quartiles, highest) in the figure's unit; a figure without samples has n = 1 and
    its value as every bound. relative_to: "" for the figure itself, else the reference model
    it is a ratio to (value and bounds divided by the reference cell's value)."""

    task: str
    model: str
    seed: int
    variant: str
    figure: str
    value: float
    n: int
    low: float
    q1: float
    q3: float
    high: float
    busy: bool
    relative_to: str = ""


def commit_date(sha: str, repo: Path | None) -> str | None:
    """The commit's committer date from `repo` (None when there is no repository or it lacks the
    commit, e.g. a shallow CI clone)."""
    if repo is None:
        return None
    done = subprocess.run(
        ["git", "-C", str(repo), "show", "-s", "--format=%cI", sha],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def run_points(records: Iterable[Record], manifest: Manifest) -> list[Point]:
    """Every scalar figure (catalog kinds but `environment`) of the run's ok cells, then each
    timing of a cell beside the run's reference model's cell as a ratio to it."""
    points = _absolute_points(records, manifest)
    reference = manifest.reference_model
    timings = {m.name for m in catalog_for(manifest.suite_metrics) if m.kind == "timing"}
    base = {
        (p.task, p.seed, p.variant, p.figure): p.value
        for p in points
        if p.model == reference and p.figure in timings
    }
    ratios = []
    for p in points:
        ref = base.get((p.task, p.seed, p.variant, p.figure))
        if p.model == reference or not ref or p.figure not in timings:
            continue
        ratios.append(
            Point(p.task, p.model, p.seed, p.variant, p.figure, p.value / ref, p.n, p.low / ref,
                  p.q1 / ref, p.q3 / ref, p.high / ref, p.busy, str(reference))
        )  # fmt: skip
    return points + ratios


def _absolute_points(records: Iterable[Record], manifest: Manifest) -> list[Point]:
    catalog = catalog_for(manifest.suite_metrics)
    points = []
    for record in records:
        if record.status != "ok":
            continue
        busy = BUSY_KEY in record.metrics or bool(record.placement.get("device_shared"))
        values = {"params_total": record.params_total, "params_active": record.params_active}
        values.update(record.metrics)
        for name, value in values.items():
            metric = catalog.find(name)
            if metric is None or metric.shape != "scalar" or metric.kind == "environment":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            summary = _samples_summary(record.metrics.get(metric.samples), metric.inverse_samples)
            n, low, q1, q3, high = summary or (1, value, value, value, value)
            points.append(
                Point(record.task, record.model, record.seed, record.variant, name, float(value),
                      n, low, q1, q3, high, busy)
            )  # fmt: skip
    return points


def _samples_summary(samples: Any, inverse: bool) -> tuple[int, float, float, float, float] | None:
    if not (isinstance(samples, list) and samples):
        return None
    x = np.asarray(samples, dtype=float)
    if inverse:
        x = 1.0 / x
    low, q1, q3, high = np.quantile(x, [0.0, 0.25, 0.75, 1.0])
    return len(x), float(low), float(q1), float(q3), float(high)


def history_file(history: Path, entry: RunEntry) -> Path:
    digest = hashlib.sha256(entry.run_id.encode()).hexdigest()[:8]
    safe_id = re.sub(r"[^A-Za-z0-9._-]+", "-", entry.run_id)[:60]
    name = f"{entry.git_sha[:12]}_{safe_id}_{digest}.jsonl"
    return history / RUNS_DIR / entry.machine_key / name


def add_run(
    history: Path, run_dir: Path, repo: Path | None, allow_dirty: bool = False
) -> tuple[Path, Added]:
    """Add one run directory to the history; (its file, what happened)."""
    manifest = read_manifest(run_dir)
    env = manifest.environment
    sha = env.get("git_sha")
    if not sha:
        raise InputError(
            f"{run_dir}: its manifest has no git_sha (run outside a git checkout?); the history "
            "keys runs by commit, so run it from a checkout"
        )
    dirty = bool(env.get("git_dirty"))
    if dirty and not allow_dirty:
        raise InputError(
            f"{run_dir}: ran from a checkout with uncommitted changes (git_dirty), so its commit "
            f"{sha[:12]} does not say what ran; commit first, or pass --allow-dirty to add it "
            "marked dirty"
        )
    machine = Machine.of(manifest)
    entry = RunEntry(
        manifest.run_id, sha, dirty, commit_date(sha, repo), manifest.created_at,
        machine.key, asdict(machine), manifest.plan.suite or "", manifest.plan.scale,
        " ".join(sorted(manifest.plan.overrides)),
        tuple(m.to_dict() for m in manifest.suite_metrics),
    )  # fmt: skip
    points = run_points(read_records(run_dir), manifest)
    if not points:
        raise InputError(f"{run_dir}: no ok cell with a figure; nothing to add to the history")
    lines = [json.dumps({"run": asdict(entry)}, sort_keys=True)]
    lines += [json.dumps(asdict(p), sort_keys=True, allow_nan=False) for p in points]
    text = "\n".join(lines) + "\n"
    path = history_file(history, entry)
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return path, "unchanged"
        write_text_atomic(path, text)
        return path, "updated"
    write_text_atomic(path, text)
    return path, "added"


def read_history(history: Path) -> tuple[pd.DataFrame, MetricCatalog]:
    """Every figure of every stored run: one row per (run, cell, figure), RUN_COLUMNS then
    POINT_COLUMNS; and the catalog of their figures (the harness's and the suites' own).
    InputError when the history holds no run."""
    files = sorted((Path(history) / RUNS_DIR).glob("*/*.jsonl"))
    if not files:
        raise InputError(f"no runs in the history {history}; add some with `bench history add`")
    rows, suite_metrics = [], {}
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            run = json.loads(lines[0])["run"]
            points = [json.loads(line) for line in lines[1:]]
        except (IndexError, KeyError, json.JSONDecodeError) as err:
            raise InputError(
                f"{path} is not a history file ({err!r}); remove it and add its run again"
            ) from None
        head = {c: run[c] for c in RUN_COLUMNS}
        rows.extend({**head, **p} for p in points)
        suite_metrics.update({m["name"]: Metric.from_dict(m) for m in run.get("suite_metrics", ())})
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *POINT_COLUMNS])
    return frame, catalog_for(suite_metrics.values())
