"""One cell of a run: build the model, train and evaluate it (in an efficiency suite, only
measure it), measure it, and turn every outcome into exactly one record.

Outcomes: `ok`; `ok` with `measurement_error` when training finished but a measurement failed
(the accuracy stands, the measured figures are absent, the run exits non-zero); `skipped` (data
absent: where it looked and what to run; or, in a language-modelling task, a model without a
causal form: why); `error` (diverged loss, or an exception, with its
message; the traceback is logged); `oom`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.kernel_tuning import tuned_kernels
from bench.measure.cell import Measurements, fixed_batch, measure_model
from bench.measure.numerics import cuda_phase, numerics
from bench.oom import is_out_of_memory
from bench.predictions import encode as encode_predictions
from bench.records import CellId, Record, utc_now
from bench.runner import lm_cell
from bench.runner.plan import ResolvedPlan
from bench.train import ProgressFn, TrainingDiverged, TrainResult, train_and_evaluate
from models.errors import NoCausalForm
from models.layers.classifier import parameter_counts
from models.registry import build_model
from suites.config import CellConfig
from suites.data import DataUnavailable, TaskData
from suites.lm.segments import LMTaskData
from suites.safe_files import one_component, real_dirs

log = logging.getLogger(__name__)

# (cell, total steps) -> (per-step callback, close callback); None draws nothing.
ProgressFactory = Callable[[CellId, int], tuple[ProgressFn, Callable[[], None]]]


def record_identity(resolved: ResolvedPlan, cell: CellId, run_id: str) -> dict[str, Any]:
    """The fields that name a cell's record, the config it ran with and when it started, for
    `Record(**identity, ...)`."""
    return dict(
        run_id=run_id,
        suite=cell.suite,
        task=cell.task,
        model=cell.model,
        scale=cell.scale,
        seed=cell.seed,
        variant=cell.variant,
        variant_values=dict(resolved.variant(cell.variant).values),
        config=resolved.cell_config(cell.task, cell.variant, cell.model),
        started_at=utc_now(),
    )


def run_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData | Exception,
    run_id: str,
    progress: ProgressFactory | None = None,
    *,
    run_dir: Path | None = None,
) -> Record:
    """`_run_cell` with the plan's grouped-GEMM policy installed (`bench.kernel_tuning`), in
    whichever process runs the cell."""
    plan = resolved.plan
    cache = Path(plan.cache_dir) if plan.cache_dir else None
    with tuned_kernels(plan.kernels, cache, plan.device):
        return _run_cell(resolved, cell, data, run_id, progress, run_dir=run_dir)


def _run_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData | Exception,
    run_id: str,
    progress: ProgressFactory | None = None,
    *,
    run_dir: Path | None = None,
) -> Record:
    """Train and evaluate one cell, then measure it; every outcome becomes a record.

    `data` is the task's data, or the exception its loader raised: DataUnavailable makes the
    cell `skipped`, any other loader failure (e.g. an example longer than max_len) `error`.
    `run_dir` is where profiler traces go (with plan.profile). A cell needs no other cell: an
    efficiency cell's ratios to the reference model are the report's (`bench.report.relative`).
    """
    t0 = time.perf_counter()
    identity = record_identity(resolved, cell, run_id)
    if isinstance(data, DataUnavailable):
        return Record(**identity, status="skipped", reason=str(data))
    if isinstance(data, Exception):
        if is_out_of_memory(data):  # e.g. data.max_len=1e8: the padded tensors do not fit
            reason = f"out of memory loading the data: {data}; lower data.max_len or n_*"
            return _failed(identity, None, "oom", reason, t0)
        return _failed(identity, None, "error", f"data: {type(data).__name__}: {data}", t0)
    if resolved.tasks[cell.task].causal:  # a language-modelling cell (suites/lm)
        return _run_lm_cell(resolved, cell, data, identity, progress, run_dir, t0)
    if resolved.suite.kind == "efficiency":  # nothing to keep if measuring fails
        return _measure_only(resolved, cell, data, identity, run_dir, t0)
    trained = train_cell(resolved, cell, data, identity, progress)
    if isinstance(trained, Record):
        return trained
    return measure_cell(resolved, cell, trained, data, run_dir)


@dataclass(frozen=True)
class Trained:
    """A cell trained and evaluated but not yet measured: what `measure_cell` needs (the
    parallel launcher keeps it, the weights beside it, in the run's staging directory)."""

    model: torch.nn.Module
    identity: dict[str, Any]
    counts: tuple[int, int]
    result: TrainResult
    phases: dict[str, Any]
    train_wall_s: float  # from the cell's start to the end of its training and evaluation
    # The FLOP figures counted beside the training (`count_cell`), or why counting failed;
    # None: not counted yet (measure_cell then counts and times at once).
    counted: dict[str, Any] | None = None
    count_failure: str = ""


def train_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData,
    identity: dict[str, Any],
    progress: ProgressFactory | None = None,
) -> Trained | Record:
    """Build, train and evaluate one cell; a failure (diverged, exception, oom) is its record."""
    t0 = time.perf_counter()
    cfg = resolved.config(cell.task, cell.variant)
    counts: tuple[int, int] | None = None
    close = None
    try:
        torch.manual_seed(cell.seed)
        model = build(resolved, cell)
        counts = parameter_counts(model)
        step_fn, close = progress(cell, cfg.train.steps) if progress else (None, None)
        device = torch.device(resolved.plan.device)
        phases: dict[str, Any] = {}
        with cuda_phase(device, "training_loop", phases):
            result = train_and_evaluate(
                model, data, cfg.train, seed=cell.seed, device=device, progress=step_fn
            )
    except TrainingDiverged as exc:
        return _failed(identity, counts, "error", f"diverged: {exc}", t0)
    except Exception as exc:  # recorded, not swallowed: the traceback goes to the log
        if is_out_of_memory(exc):
            reason = f"out of memory: {exc}; lower train.batch_size or data.max_len"
            return _failed(identity, counts, "oom", reason, t0)
        log.error("%s failed:\n%s", cell, traceback.format_exc())
        return _failed(identity, counts, "error", f"{type(exc).__name__}: {exc}", t0)
    finally:
        if close is not None:
            close()
    return Trained(model, identity, counts, result, phases, time.perf_counter() - t0)


def build(resolved: ResolvedPlan, cell: CellId) -> torch.nn.Module:
    """The cell's model, freshly initialised (the caller seeds torch)."""
    cfg = resolved.config(cell.task, cell.variant)
    task = resolved.tasks[cell.task].model_task(cfg.data.max_len)
    return build_model(cell.model, cfg.model, task, resolved.own(cell.task, cell.variant))


def measure_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    trained: Trained,
    data: TaskData,
    run_dir: Path | None,
) -> Record:
    """Measure a trained cell (FLOPs, latency, memory) and make its `ok` record; a failed
    measurement is the record's `measurement_error` (an `oom` one makes it an `oom` record)."""
    # The cell's duration is its training's plus its measurement's (run side by side with
    # other cells, the two are apart in time).
    t0 = time.perf_counter() - trained.train_wall_s
    cfg = resolved.config(cell.task, cell.variant)
    identity, counts, result = trained.identity, trained.counts, trained.result
    model = trained.model
    # The measurements read their own per-phase CUDA peaks (training step, inference), since
    # they reset the peak counters themselves.
    if trained.counted is None:
        measured, failure = _measure_after_training(
            lambda: _measure(resolved, cell, model, data, cfg, run_dir), cell
        )
    elif trained.count_failure:
        measured, failure = None, trained.count_failure
    else:
        measured, failure = _measure_after_training(
            lambda: _measure(resolved, cell, model, data, cfg, run_dir, part="time"), cell
        )
        if measured is not None:
            measured = Measurements({**trained.counted, **measured.metrics}, measured.artifacts)
    if failure.startswith(_OOM_WHILE_MEASURING):  # an `oom` record, rerun on resume
        return _failed(identity, counts, "oom", failure, t0)
    metrics = {
        **_training_metrics(result, data),
        **(measured.metrics if measured else {}),
        **trained.phases,
        "numerics": numerics(),
    }
    return _ok(
        identity,
        counts,
        metrics,
        measured,
        data,
        cfg,
        run_dir,
        t0,
        routing=result.routing,
        measurement_error=failure,
        test_predictions=encode_predictions(
            data.test.content_sha256, result.test_predicted.numpy(), data.test.labels.numpy()
        ),
    )


def count_cell(resolved: ResolvedPlan, cell: CellId, trained: Trained, data: TaskData) -> Trained:
    """`trained` with its FLOP figures counted (or why counting failed): the half of the
    measurements that may run beside other cells; `measure_cell` then only times it."""
    cfg = resolved.config(cell.task, cell.variant)
    counted, failure = _measure_after_training(
        lambda: _measure(resolved, cell, trained.model, data, cfg, None, part="count"), cell
    )
    metrics = counted.metrics if counted is not None else {}
    return dataclasses.replace(trained, counted=metrics, count_failure=failure)


def _measure_only(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData,
    identity: dict[str, Any],
    run_dir: Path | None,
    t0: float,
) -> Record:
    """An efficiency cell: build and measure the model, no training."""
    cfg = resolved.config(cell.task, cell.variant)
    counts: tuple[int, int] | None = None
    try:
        torch.manual_seed(cell.seed)
        model = build(resolved, cell)
        counts = parameter_counts(model)
        measured = _measure(resolved, cell, model, data, cfg, run_dir)
    except Exception as exc:  # recorded, not swallowed: the traceback goes to the log
        if is_out_of_memory(exc):
            reason = f"out of memory: {exc}; lower train.batch_size or data.max_len"
            return _failed(identity, counts, "oom", reason, t0)
        log.error("%s failed:\n%s", cell, traceback.format_exc())
        return _failed(identity, counts, "error", f"{type(exc).__name__}: {exc}", t0)
    metrics = {**measured.metrics, "numerics": numerics()}
    return _ok(identity, counts, metrics, measured, data, cfg, run_dir, t0)


def _run_lm_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: TaskData,
    identity: dict[str, Any],
    progress: ProgressFactory | None,
    run_dir: Path | None,
    t0: float,
) -> Record:
    """A language-modelling cell (`bench.runner.lm_cell`): as `run_cell`, plus `skipped` for a
    model with no causal form, the causality probe, and the corpus's facts in the record."""
    if not isinstance(data, LMTaskData):
        reason = f"data: a causal task's loader must return LMTaskData, got {type(data).__name__}"
        return _failed(identity, None, "error", reason, t0)
    cfg = resolved.config(cell.task, cell.variant)
    counts: tuple[int, int] | None = None
    close = None
    try:
        torch.manual_seed(cell.seed)
        model = lm_cell.build_causal(resolved, cell)
        counts = parameter_counts(model)
        step_fn, close = progress(cell, cfg.train.steps) if progress else (None, None)
        device = torch.device(resolved.plan.device)
        phases: dict[str, Any] = {}
        with cuda_phase(device, "training_loop", phases):
            result = lm_cell.train(resolved, cell, model, data, device, step_fn)
        vocab = resolved.tasks[cell.task].vocab_size
        probe = lm_cell.probe_figures(model, data, vocab, cell.seed, device)
    except NoCausalForm as exc:
        return Record(**identity, status="skipped", reason=str(exc))  # it says why
    except TrainingDiverged as exc:
        return _failed(identity, counts, "error", f"diverged: {exc}", t0)
    except Exception as exc:  # recorded, not swallowed: the traceback goes to the log
        if is_out_of_memory(exc):
            reason = f"out of memory: {exc}; lower train.batch_size or data.max_len"
            return _failed(identity, counts, "oom", reason, t0)
        log.error("%s failed:\n%s", cell, traceback.format_exc())
        return _failed(identity, counts, "error", f"{type(exc).__name__}: {exc}", t0)
    finally:
        if close is not None:
            close()
    measured, failure = _measure_after_training(
        lambda: _measure(resolved, cell, model, data, cfg, run_dir), cell
    )
    if failure.startswith(_OOM_WHILE_MEASURING):
        return _failed(identity, counts, "oom", failure, t0)
    figures = measured.metrics if measured else {}
    metrics = {
        **lm_cell.lm_cell_metrics(result, probe, data, figures, resolved, cell),
        **figures,
        **phases,
        "numerics": numerics(),
    }
    record = _ok(identity, counts, metrics, measured, data, cfg, run_dir, t0,  # type: ignore[arg-type]
                 routing=result.routing, measurement_error=failure)  # fmt: skip
    return dataclasses.replace(record, data={**record.data, **data.info.record_fields(data)})


def _measure(
    resolved: ResolvedPlan,
    cell: CellId,
    model: torch.nn.Module,
    data: TaskData,
    cfg: CellConfig,
    run_dir: Path | None,
    part: str = "all",
) -> Measurements:
    """FLOPs, latency and memory on the first batch of the test split (`part`: all, or only
    "count" or "time": `bench.measure.cell.measure_model`); a trace with --profile."""
    trace_dir = None
    if resolved.plan.profile and run_dir is not None:
        variant = f"-{cell.variant}" if cell.variant else ""
        name = f"{cell.task}-{cell.model}-seed{cell.seed}{variant}"
        # a swept string value may hold "/": one folder below traces/, no link on the way
        trace_dir = real_dirs(run_dir, run_dir / "traces" / one_component(name))
    return measure_model(
        model,
        fixed_batch(data.test, cfg.train.batch_size),
        train=cfg.train,
        device=torch.device(resolved.plan.device),
        cfg=cfg.measure,
        trace_dir=trace_dir,
        trace_worker=cell.model,
        part=part,
    )


def _measure_after_training(
    measure: Callable[[], Measurements], cell: CellId
) -> tuple[Measurements | None, str]:
    """`measure()`, or None and why it failed: the trained cell's accuracy still stands, so a
    failure here is the record's `measurement_error` (logged with its traceback)."""
    try:
        return measure(), ""
    except Exception as exc:
        log.error("%s: measurements failed:\n%s", cell, traceback.format_exc())
        if is_out_of_memory(exc):
            return None, _one_line(
                f"{_OOM_WHILE_MEASURING}: {exc}; lower train.batch_size or data.max_len"
            )
        return None, _one_line(f"measurements failed: {type(exc).__name__}: {exc}")


_OOM_WHILE_MEASURING = "out of memory while measuring"


def _training_metrics(result: TrainResult, data: TaskData) -> dict[str, Any]:
    return {
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
        "train_loss_curve": [list(p) for p in result.train_loss_curve],
        "dev_curve_examples": result.dev_curve_examples,
        "dev_curve_train_s": result.dev_curve_train_s,
        **(
            {"train_stopped_at_step": result.stopped_at_step}
            if result.stopped_at_step is not None
            else {}
        ),
    }


def _ok(
    identity: dict,
    counts: tuple[int, int],
    metrics: dict[str, Any],
    measured: Measurements | None,
    data: TaskData,
    cfg: CellConfig,
    run_dir: Path | None,
    t0: float,
    *,
    routing: list[Any] | None = None,
    measurement_error: str = "",
    test_predictions: dict[str, Any] | None = None,
) -> Record:
    artifacts = {}
    if measured is not None and run_dir is not None:
        artifacts = {n: str(p.relative_to(run_dir)) for n, p in measured.artifacts.items()}
    return Record(
        **identity,
        status="ok",
        measurement_error=measurement_error,
        params_total=counts[0],
        params_active=counts[1],
        metrics=metrics,
        artifacts=artifacts,
        routing=routing or [],
        test_predictions=test_predictions or {},
        data={
            "source": data.source,
            "n_train": len(data.train),
            "n_dev": len(data.dev),
            "n_test": len(data.test),
            "max_len": cfg.data.max_len,
            "data_seed": cfg.data.seed,
            # a generated task's generator (resolved by the plan: never "" for such a task)
            **({"generator": cfg.data.generator} if cfg.data.generator else {}),
        },
        duration_s=time.perf_counter() - t0,
    )


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


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
