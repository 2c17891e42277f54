"""Expands suite x tasks x models x seeds into cells, runs each, appends one record per cell.

Every cell ends in a record, whatever happens: `ok`, `skipped` (data absent, with where it looked
and what to run), `error` (diverged loss or an exception, with its message; the traceback is
logged), or `oom`. Records are appended as each cell finishes, so a killed run loses nothing
finished, and `resume()` runs only the cells without an `ok` record.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import catalog
from bench.config import Override, for_task, parse_override
from bench.environment import environment
from bench.measure import efficiency
from bench.measure.cell import Measurements, fixed_batch, measure_model, preset, run_measurements
from bench.records import CellId, Record, RecordStore, utc_now, write_manifest
from bench.train import ProgressFn, TrainingDiverged, train_and_evaluate
from models.layers.classifier import parameter_counts
from suites.config import CellConfig, Scale
from suites.data import DataRequest, DataUnavailable, TaskData
from suites.spec import SuiteSpec, TaskSpec

log = logging.getLogger(__name__)

# (cell, total steps) -> (per-step callback, close callback); None draws nothing.
ProgressFactory = Callable[[CellId, int], tuple[ProgressFn, Callable[[], None]]]


@dataclass(frozen=True)
class RunPlan:
    """What a run covers; everything needed to redo or resume it (stored in the manifest)."""

    suite: str
    scale: str
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()  # raw `--set` strings
    data_dir: str | None = None
    cache_dir: str = ""
    device: str = "cpu"
    profile: bool = False  # write a profiler trace of a few training steps per ok cell

    def cells(self) -> list[CellId]:
        """Task-major order, so each task's data is loaded once."""
        return [
            CellId(self.suite, task, model, self.scale, seed)
            for task in self.tasks
            for model in self.models
            for seed in self.seeds
        ]


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan checked against the registries, with each task's resolved config."""

    plan: RunPlan
    suite: SuiteSpec
    scale: Scale
    tasks: dict[str, TaskSpec]
    configs: dict[str, CellConfig]
    overrides: tuple[Override, ...] = field(default=())


def resolve(plan: RunPlan) -> ResolvedPlan:
    """Check names (unknown ones raise with the nearest names) and resolve every task's config."""
    suite = catalog.SUITES.get(plan.suite)
    if plan.scale not in suite.scales:
        raise ValueError(
            f"unknown scale {plan.scale!r} for suite {plan.suite!r}; "
            f"scales: {', '.join(suite.scales)}"
        )
    scale = suite.scales[plan.scale]
    for model in plan.models:
        catalog.MODELS.get(model)
    tasks = {t: catalog.TASKS.get(f"{plan.suite}/{t}") for t in plan.tasks}
    if not plan.seeds:
        raise ValueError("a run needs at least one seed")
    overrides = tuple(parse_override(text, suite.tasks) for text in plan.overrides)
    configs = {t: scale.resolve(t, for_task(overrides, t)) for t in plan.tasks}
    return ResolvedPlan(plan, suite, scale, tasks, configs, overrides)


def new_run_id(plan: RunPlan) -> str:
    return f"{plan.suite}-{plan.scale}-{time.strftime('%Y%m%d-%H%M%S')}"


def start(resolved: ResolvedPlan, run_dir: Path, argv: Sequence[str] = ()) -> None:
    """Create the run directory and write its manifest (refuses an existing run)."""
    if (run_dir / "manifest.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with --resume {run_dir}")
    plan = resolved.plan
    write_manifest(
        run_dir,
        {
            "run_id": run_dir.name,
            "created_at": utc_now(),
            "argv": list(argv),
            "plan": {
                **plan.__dict__,
                "models": list(plan.models),
                "tasks": list(plan.tasks),
                "seeds": list(plan.seeds),
                "overrides": list(plan.overrides),
            },
            "configs": {task: cfg.to_dict() for task, cfg in resolved.configs.items()},
            "reference_model": resolved.suite.reference_model,
            "environment": environment(),
        },
    )


def plan_from_manifest(manifest: dict[str, Any]) -> RunPlan:
    raw = manifest["plan"]
    return RunPlan(
        suite=raw["suite"],
        scale=raw["scale"],
        models=tuple(raw["models"]),
        tasks=tuple(raw["tasks"]),
        seeds=tuple(raw["seeds"]),
        overrides=tuple(raw["overrides"]),
        data_dir=raw["data_dir"],
        cache_dir=raw["cache_dir"],
        device=raw["device"],
        profile=raw.get("profile", False),
    )


def execute(
    resolved: ResolvedPlan, run_dir: Path, progress: ProgressFactory | None = None
) -> list[Record]:
    """Run every cell of the plan that has no `ok` record yet; return the run's latest records."""
    store = RecordStore(run_dir)
    store.repair()
    done = {cell for cell, r in store.latest().items() if r.status == "ok"}
    data_by_task: dict[str, TaskData | Exception] = {}
    cells = resolved.plan.cells()
    if resolved.suite.kind == "efficiency":
        cells = efficiency.in_run_order(cells)  # the baseline first: others are relative to it
    for cell in cells:
        if cell in done:
            log.info("%s: already ok, skipped on resume", cell)
            continue
        if cell.task not in data_by_task:
            data_by_task[cell.task] = _load(resolved, cell.task)
        record = run_cell(
            resolved, cell, data_by_task[cell.task], run_dir.name, progress, run_dir=run_dir
        )
        store.append(record)
        log.info("%s: %s %s", cell, record.status, record.reason)
    latest = store.latest()
    return [latest[cell] for cell in resolved.plan.cells() if cell in latest]


def run_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData | Exception,
    run_id: str,
    progress: ProgressFactory | None = None,
    *,
    run_dir: Path | None = None,
) -> Record:
    """Train and evaluate one cell, then measure it; every outcome becomes a record.

    Efficiency suites only measure (no training). `run_dir` is where profiler traces go (with
    plan.profile) and, for efficiency suites, where the baseline's record is read.

    `data` is the task's data, or the exception its loader raised: DataUnavailable makes the
    cell `skipped`, any other loader failure (e.g. an example longer than max_len) `error`.
    """
    started_at, t0 = utc_now(), time.perf_counter()
    identity = dict(
        run_id=run_id,
        suite=cell.suite,
        task=cell.task,
        model=cell.model,
        scale=cell.scale,
        seed=cell.seed,
        started_at=started_at,
    )
    if isinstance(data, DataUnavailable):
        return Record(**identity, status="skipped", reason=str(data))
    if isinstance(data, Exception):
        return _failed(identity, None, "error", f"data: {type(data).__name__}: {data}", t0)
    cfg = resolved.configs[cell.task]
    task = resolved.tasks[cell.task]
    counts: tuple[int, int] | None = None
    close = None
    try:
        torch.manual_seed(cell.seed)
        model = catalog.MODELS.get(cell.model)(cfg.model, task.model_task(cfg.data.max_len))
        counts = parameter_counts(model)
        if resolved.suite.kind == "efficiency":
            measured = _measure(resolved, cell, model, data, cfg, run_dir)
            latest = RecordStore(run_dir).latest() if run_dir else {}
            return Record(
                **identity,
                status="ok",
                params_total=counts[0],
                params_active=counts[1],
                metrics={
                    **measured.metrics,
                    **efficiency.relative_metrics(measured.metrics, cell, latest),
                },
                artifacts=_relative_paths(measured, run_dir),
                data=_data_summary(data, cfg),
                duration_s=time.perf_counter() - t0,
            )
        step_fn, close = progress(cell, cfg.train.steps) if progress else (None, None)
        result = train_and_evaluate(
            model,
            data,
            cfg.train,
            seed=cell.seed,
            device=torch.device(resolved.plan.device),
            progress=step_fn,
        )
    except TrainingDiverged as exc:
        return _failed(identity, counts, "error", f"diverged: {exc}", t0)
    except Exception as exc:  # recorded, not swallowed: the traceback goes to the log
        if _is_out_of_memory(exc):
            reason = f"out of memory: {exc}; lower train.batch_size or data.max_len"
            return _failed(identity, counts, "oom", reason, t0)
        log.error("%s failed:\n%s", cell, traceback.format_exc())
        return _failed(identity, counts, "error", f"{type(exc).__name__}: {exc}", t0)
    finally:
        if close is not None:
            close()
    measured, failure = run_measurements(
        lambda: _measure(resolved, cell, model, data, cfg, run_dir)
    )
    return Record(
        **identity,
        status="ok",
        params_total=counts[0],
        params_active=counts[1],
        metrics={
            "accuracy": result.accuracy,
            "dev_accuracy": result.dev_accuracy,
            "majority_accuracy": data.test.majority_rate(),
            "train_loss_final": result.train_loss_final,
            "train_time_s": result.train_time_s,
            "train_compute_s": result.train_compute_s,
            "examples_per_s": result.examples_per_s,
            "best_step": result.best_step,
            "loss_curve": result.loss_curve,
            "dev_curve": [list(p) for p in result.dev_curve],
            **(measured.metrics if measured else {}),
        },
        reason=failure,
        artifacts=_relative_paths(measured, run_dir),
        routing=result.routing,
        data=_data_summary(data, cfg),
        duration_s=time.perf_counter() - t0,
    )


def _measure(
    resolved: ResolvedPlan,
    cell: CellId,
    model: torch.nn.Module,
    data: TaskData,
    cfg: CellConfig,
    run_dir: Path | None,
) -> Measurements:
    """FLOPs, latency and memory on the first batch of the test split; a trace with --profile."""
    trace_dir = None
    if resolved.plan.profile and run_dir is not None:
        trace_dir = run_dir / "traces" / f"{cell.task}-{cell.model}-seed{cell.seed}"
    return measure_model(
        model,
        fixed_batch(data.test, cfg.train.batch_size),
        lr=cfg.train.lr,
        grad_clip=cfg.train.grad_clip,
        device=torch.device(resolved.plan.device),
        cfg=preset(cell.scale),
        trace_dir=trace_dir,
        trace_worker=cell.model,
    )


def _relative_paths(measured: Measurements | None, run_dir: Path | None) -> dict[str, str]:
    if measured is None or run_dir is None:
        return {}
    return {name: str(path.relative_to(run_dir)) for name, path in measured.artifacts.items()}


def _is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; the CPU allocator raises a plain RuntimeError."""
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def load_task_data(resolved: ResolvedPlan, task: str) -> TaskData | Exception:
    """The task's data, or the exception its loader raised (for `bench profile`)."""
    return _load(resolved, task)


def _load(resolved: ResolvedPlan, task: str) -> TaskData | Exception:
    """The task's data, or the loader's exception (recorded per cell; traceback logged)."""
    cfg = resolved.configs[task].data
    plan = resolved.plan
    request = DataRequest(
        max_len=cfg.max_len,
        n_train=cfg.n_train,
        n_dev=cfg.n_dev,
        n_test=cfg.n_test,
        seed=cfg.seed,
        cache_dir=Path(plan.cache_dir),
        data_dir=Path(plan.data_dir) if plan.data_dir else None,
    )
    try:
        return resolved.tasks[task].load(request)
    except DataUnavailable as exc:
        return exc
    except Exception as exc:  # recorded in every cell of the task, not swallowed
        log.error("loading %s failed:\n%s", task, traceback.format_exc())
        return exc


def _failed(
    identity: dict, counts: tuple[int, int] | None, status: str, reason: str, t0: float
) -> Record:
    total, active = counts if counts else (None, None)
    return Record(
        **identity,
        status=status,
        reason=_one_line(reason),
        params_total=total,
        params_active=active,
        duration_s=time.perf_counter() - t0,
    )


def _data_summary(data: TaskData, cfg: CellConfig) -> dict[str, Any]:
    return {
        "source": data.source,
        "n_train": len(data.train),
        "n_dev": len(data.dev),
        "n_test": len(data.test),
        "max_len": cfg.data.max_len,
        "data_seed": cfg.data.seed,
    }


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
