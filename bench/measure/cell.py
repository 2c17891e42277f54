"""The measurements of one cell: FLOPs (counted, analytic, fvcore), latency and peak memory of a
training step and of an inference batch, and optionally a profiler trace.

Everything runs on a deep copy of the model, so measuring never changes the trained weights, on
one fixed batch (the first `batch_size` examples of the given split). The timed training step is
the step that trains (`bench.train_step.TrainStep`: the configured AdamW and schedule, loss and
divergence check, backward, clipping), with a fresh optimizer on the copy. Every figure is
declared in the metric catalog (`bench.metrics`). When a matmul-like op ran without a FLOP
formula, the counted figures are left out (an undercount is not a measurement) and
`flops_unformulated_ops` names the ops.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.measure.flops import (
    AnalyticFlops,
    CalflopsCounter,
    analytic_flops,
    count_flops,
    fvcore_flops,
)
from bench.measure.latency import LatencyConfig, LatencySamples, sample_latency
from bench.measure.memory import measure_peak, resident_bytes
from bench.measure.profile import ProfileConfig, ProfileResult, profile_steps
from bench.oom import is_out_of_memory
from bench.train_step import TrainStep
from suites.config import MeasureConfig, TrainConfig
from suites.data import Split

log = logging.getLogger(__name__)


def latency_rules(cfg: MeasureConfig) -> LatencyConfig:
    """The latency sampling rules of a cell's `measure` config."""
    return LatencyConfig(warmup=cfg.warmup, min_count=cfg.min_count, min_time_s=cfg.min_time_s)


def profile_schedule(cfg: MeasureConfig) -> ProfileConfig:
    """The profiler schedule of a cell's `measure` config."""
    return ProfileConfig(
        wait=cfg.profile_wait, warmup=cfg.profile_warmup, active=cfg.profile_active
    )


@dataclass(frozen=True)
class Measurements:
    """metrics: JSON-ready values; artifacts: name -> absolute path of a written file."""

    metrics: dict[str, Any]
    artifacts: dict[str, Path]


def fixed_batch(split: Split, batch_size: int) -> Split:
    """The first `batch_size` examples (all of them if fewer): the same input for every model."""
    return split.select(torch.arange(min(batch_size, len(split))))


def measure_model(
    model: nn.Module,
    batch: Split,
    *,
    train: TrainConfig,
    device: torch.device,
    cfg: MeasureConfig,
    trace_dir: Path | None = None,
    trace_worker: str = "cell",
    part: str = "all",
) -> Measurements:
    """FLOPs, latency and memory of `model` on `batch`, training as `train` says; a trace into
    `trace_dir` if given. `part`: "all", or one of its two halves: "count" (the FLOPs, which
    no other work running beside changes) and "time" (latency, memory, the trace: alone)."""
    if part not in PARTS:
        raise ValueError(f"measure_model: part {part!r} is not one of {', '.join(PARTS)}")
    bench = TimedModel(model, batch, train=train, device=device)
    metrics = _count(bench, cfg) if part != "time" else {}
    if part == "count":
        return Measurements(metrics, {})
    timed = _time(bench, device, cfg, trace_dir, trace_worker)
    return Measurements({**metrics, **timed.metrics}, timed.artifacts)


PARTS = ("all", "count", "time")


def _count(bench: TimedModel, cfg: MeasureConfig) -> dict[str, Any]:
    """The FLOP figures (counted, analytic, linear-only, fvcore; forward and training step)."""
    work, optimizer, size = bench.work, bench.optimizer, len(bench.labels)
    forward, loss_and_backward = bench.forward, bench.loss_and_backward
    inputs, lengths = bench.inputs, bench.lengths

    metrics: dict[str, Any] = {}
    work.eval()
    with torch.no_grad():
        analytic: list[AnalyticFlops] = []
        calflops = CalflopsCounter()

        def counted_forward() -> None:
            with calflops:
                analytic.append(analytic_flops(work, forward))

        counted = count_flops(counted_forward, strict=False)
    # the paper's convention (what calflops reports for this code), beside the full count
    metrics["flops_fwd_per_example_calflops"] = calflops.flops / size
    if counted.unformulated:  # an undercount is not recorded: a missing figure is absent
        metrics["flops_unformulated_ops"] = list(counted.unformulated)
    else:
        metrics["flops_fwd_per_example"] = counted.total / size
        metrics["flops_fwd_by_op"] = {k: v / size for k, v in counted.by_op.items()}
    (parts,) = analytic
    if parts.kernels:  # the path each routed part ran on this batch (models.kernels.dispatch)
        metrics["gemm_kernels"] = dict(parts.kernels)
    if parts.missing:
        metrics["flops_analytic_missing"] = list(parts.missing)
    else:
        components = parts.components
        metrics["flops_fwd_per_example_analytic"] = sum(components.values()) / size
        metrics["flops_fwd_analytic_components"] = {k: v / size for k, v in components.items()}
    if cfg.fvcore:
        metrics.update(_fvcore_metrics(work, inputs, lengths, size))
        mismatch = fvcore_disagreement(metrics)
        if mismatch:
            metrics["flops_fvcore_disagreement"] = mismatch

    work.train()
    counted = count_flops(loss_and_backward, strict=False)
    if counted.unformulated:
        metrics["flops_unformulated_ops"] = sorted(
            set(metrics.get("flops_unformulated_ops", [])) | set(counted.unformulated)
        )
    else:
        metrics["flops_train_per_example"] = counted.total / size
    optimizer.zero_grad(set_to_none=True)
    return metrics


def _time(
    bench: TimedModel,
    device: torch.device,
    cfg: MeasureConfig,
    trace_dir: Path | None,
    trace_worker: str,
) -> Measurements:
    """Latency and peak memory of a training step and of an inference batch; the trace."""
    work, optimizer = bench.work, bench.optimizer
    train_step, infer = bench.train_step, bench.infer
    metrics: dict[str, Any] = {}
    train_samples = sample_latency(train_step, latency_rules(cfg), device)
    metrics.update(_latency_metrics("train_step", train_samples))
    metrics["train_steps_per_s"] = 1.0 / train_samples.median_s
    if train_samples.cpu_median_s:
        metrics["train_steps_per_cpu_s"] = 1.0 / train_samples.cpu_median_s
    optimizer.zero_grad(set_to_none=True)  # the phase must free no resident tensor
    peak = measure_peak(train_step, device, resident=resident_bytes(work, optimizer))
    metrics["memory_peak_train_bytes"] = peak.peak_bytes
    metrics["memory_method"] = peak.method
    if peak.reserved_bytes is not None:
        metrics["memory_reserved_train_bytes"] = peak.reserved_bytes

    work.eval()
    optimizer.zero_grad(set_to_none=True)
    metrics.update(_latency_metrics("infer", sample_latency(infer, latency_rules(cfg), device)))
    peak = measure_peak(infer, device, resident=resident_bytes(work))
    metrics["memory_peak_infer_bytes"] = peak.peak_bytes
    if peak.reserved_bytes is not None:
        metrics["memory_reserved_infer_bytes"] = peak.reserved_bytes

    artifacts: dict[str, Path] = {}
    if trace_dir is not None:
        work.train()
        result = profile_steps(train_step, trace_dir, trace_worker, profile_schedule(cfg), device)
        artifacts = {"trace": result.trace, "op_table": result.op_table}
        artifacts["phases"] = result.phases_json
    return Measurements(metrics, artifacts)


def profile_model(
    model: nn.Module,
    batch: Split,
    *,
    train: TrainConfig,
    device: torch.device,
    cfg: ProfileConfig,
    trace_dir: Path,
    trace_worker: str,
) -> ProfileResult:
    """Only the profiler trace of a few training steps (`bench profile`)."""
    bench = TimedModel(model, batch, train=train, device=device)
    bench.work.train()
    return profile_steps(bench.train_step, trace_dir, trace_worker, cfg, device)


class TimedModel:
    """A deep copy of the model on the device with its batch, its own `TrainStep` and the timed
    units."""

    def __init__(
        self, model: nn.Module, batch: Split, *, train: TrainConfig, device: torch.device
    ) -> None:
        self.work = copy.deepcopy(model).to(device)
        self.inputs = tuple(t.to(device) for t in batch.inputs)  # each (B, L)
        self.lengths = tuple(n.to(device) for n in batch.lengths)  # each (B,)
        self.labels = batch.labels.to(device)  # (B,)
        self.step = TrainStep(self.work, train)
        self.optimizer = self.step.optimizer

    def forward(self) -> Any:
        return self.work(self.inputs, self.lengths)

    def loss_and_backward(self) -> None:
        """The step's forward and backward, without the optimizer (what the FLOPs count)."""
        self.step.loss_and_backward(self.inputs, self.lengths, self.labels)

    def train_step(self) -> None:
        """One training step, exactly as training takes it."""
        self.step(self.inputs, self.lengths, self.labels)

    @torch.no_grad()
    def infer(self) -> None:
        self.forward()


def _latency_metrics(name: str, samples: LatencySamples) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        f"latency_{name}_s_median": samples.median_s,
        f"latency_{name}_s_p90": samples.p90_s,
        f"latency_{name}_s_samples": list(samples.samples_s),
    }
    if samples.cpu_samples_s:  # process CPU seconds per call (CPU runs): steadier under load
        metrics[f"cpu_time_{name}_s_median"] = samples.cpu_median_s
        metrics[f"cpu_time_{name}_s_samples"] = list(samples.cpu_samples_s)
    return metrics


def fvcore_disagreement(metrics: dict[str, Any]) -> str:
    """Why fvcore's forward figure and the counted one differ (empty when they agree or one is
    missing): the cross-check has failed, and the record says so instead of carrying it quietly."""
    ours = metrics.get("flops_fwd_per_example")
    theirs = metrics.get("flops_fwd_per_example_fvcore")
    if not ours or theirs is None or abs(theirs - ours) <= 1e-9 * ours:
        return ""
    return (
        f"fvcore counts {theirs / ours:.4f} x the counted forward FLOPs; an op fvcore traces "
        "is counted differently (see fvcore_unsupported_ops and the handles in "
        "bench/measure/flops/fvcore_check.py)"
    )


def _fvcore_metrics(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], lengths: tuple[torch.Tensor, ...], size: int
) -> dict[str, Any]:
    """fvcore's figure and unsupported ops; a model fvcore cannot trace gets the reason instead
    (recorded, not raised: the counted figure does not depend on it)."""
    try:
        result = fvcore_flops(model, inputs, lengths)
    except Exception as exc:  # recorded in the metrics and logged with its traceback
        if is_out_of_memory(exc):  # not fvcore's failure: the cell is `oom`
            raise
        first_line = (str(exc).splitlines() or [""])[0]
        log.warning("fvcore could not trace %s: %s", type(model).__name__, first_line)
        log.debug("fvcore traceback", exc_info=True)
        return {"fvcore_error": f"{type(exc).__name__}: {first_line}"[:300]}
    return {
        "flops_fwd_per_example_fvcore": result.flops / size,
        "fvcore_unsupported_ops": dict(result.unsupported),
    }
