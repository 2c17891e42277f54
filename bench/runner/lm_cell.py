"""One language-modelling cell (a task with `TaskSpec.causal`, suites/lm): build the model in its
causal form, train it on next-token loss, probe its causality, measure it, and record it.

Outcomes as every cell (`bench.runner.cell`), plus: a model whose builder raises `NoCausalForm`
is `skipped` with its reason. The record's figures: the loss in nats, perplexity (word level) or
bits per byte (byte level), token throughput, forward FLOPs per token, the causality probe's
verdict (`bench.causality`); its `data` says the token unit, the evaluation protocol and the
corpus's hashes and sizes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import traceback
from pathlib import Path
from typing import Any

import torch

from bench.causality import CausalityProbe, probe_causality
from bench.measure.numerics import cuda_phase, numerics
from bench.oom import is_out_of_memory
from bench.records import CellId, Record
from bench.runner.cell import (
    _OOM_WHILE_MEASURING,
    ProgressFactory,
    _failed,
    _measure,
    _measure_after_training,
    _ok,
)
from bench.runner.plan import ResolvedPlan
from bench.train import TrainingDiverged
from bench.train_lm import LMTrainResult, check_lm_output, train_language_model
from models.errors import NoCausalForm
from models.layers.classifier import parameter_counts
from models.registry import build_model
from suites.lm.segments import LMTaskData

log = logging.getLogger(__name__)

PROBE_EXAMPLES = 8  # test segments the causality probe runs on


def run_lm_cell(
    resolved: ResolvedPlan,
    cell: CellId,
    data: LMTaskData,
    identity: dict[str, Any],
    progress: ProgressFactory | None,
    run_dir: Path | None,
    t0: float,
) -> Record:
    """Train, probe and measure one language-modelling cell; every outcome becomes a record."""
    if not isinstance(data, LMTaskData):
        reason = f"data: a causal task's loader must return LMTaskData, got {type(data).__name__}"
        return _failed(identity, None, "error", reason, t0)
    spec = resolved.tasks[cell.task]
    cfg = resolved.config(cell.task, cell.variant)
    counts: tuple[int, int] | None = None
    close = None
    try:
        torch.manual_seed(cell.seed)
        task = spec.model_task(cfg.data.max_len)
        own = resolved.own(cell.task, cell.variant)
        try:
            model = build_model(cell.model, cfg.model, task, own)
        except NoCausalForm as exc:
            return Record(**identity, status="skipped", reason=f"no causal form: {exc}")
        counts = parameter_counts(model)
        device = torch.device(resolved.plan.device)
        model.to(device)
        check_lm_output(model, data.train, spec.num_classes, device)
        step_fn, close = progress(cell, cfg.train.steps) if progress else (None, None)
        phases: dict[str, Any] = {}
        with cuda_phase(device, "training_loop", phases):
            result = train_language_model(
                model, data, cfg.train, seed=cell.seed, device=device, progress=step_fn
            )
        probe = run_probe(model, data, spec.vocab_size, cell.seed, device)
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
    measured_metrics = measured.metrics if measured else {}
    metrics = {
        **lm_metrics(result, data.info.token_unit),
        **probe.metrics(),
        **measured_metrics,
        **per_token_metrics(measured_metrics, data, cfg.data.max_len, cfg.train.batch_size),
        **phases,
        "numerics": numerics(),
    }
    record = _ok(
        identity,
        counts,  # type: ignore[arg-type]
        metrics,
        measured,
        data,
        cfg,
        run_dir,
        t0,
        routing=result.routing,
        measurement_error=failure,
    )
    return dataclasses.replace(record, data={**record.data, **data.info.record_fields(data)})


def run_probe(
    model: torch.nn.Module, data: LMTaskData, vocab_size: int, seed: int, device: torch.device
) -> CausalityProbe:
    """The causality probe on the first PROBE_EXAMPLES full-length test segments (all the test
    segments when fewer are full)."""
    full = torch.nonzero(data.test.lengths[0] == data.test.inputs[0].shape[1]).flatten()
    index = (
        full[:PROBE_EXAMPLES] if len(full) else torch.arange(min(PROBE_EXAMPLES, len(data.test)))
    )
    batch = data.test.select(index)
    tokens, lengths = batch.inputs[0].to(device), batch.lengths[0].to(device)
    return probe_causality(model, tokens, lengths, vocab_size, seed=seed)


def lm_metrics(result: LMTrainResult, token_unit: str) -> dict[str, Any]:
    """The trained cell's figures; perplexity for word-level data, bits per byte for bytes."""
    headline = (
        {"test_perplexity": math.exp(result.test_loss_nats)}
        if token_unit == "word"
        else {"test_bits_per_byte": result.test_loss_nats / math.log(2)}
    )
    return {
        "test_loss_nats": result.test_loss_nats,
        "dev_loss_nats": result.dev_loss_nats,
        **headline,
        "test_scored_tokens": result.test_scored_tokens,
        "train_loss_final": result.train_loss_final,
        "train_time_s": result.train_time_s,
        "train_compute_s": result.train_compute_s,
        "examples_per_s": result.examples_per_s,
        "train_tokens_per_s": result.train_tokens_per_s,
        "best_step": result.best_step,
        "loss_curve": result.loss_curve,
        "dev_loss_curve": [list(p) for p in result.dev_loss_curve],
        "train_loss_curve": [list(p) for p in result.train_loss_curve],
        "dev_curve_examples": result.dev_curve_examples,
        "dev_curve_train_s": result.dev_curve_train_s,
        **(
            {"train_stopped_at_step": result.stopped_at_step}
            if result.stopped_at_step is not None
            else {}
        ),
    }


def per_token_metrics(
    measured: dict[str, Any], data: LMTaskData, max_len: int, batch_size: int
) -> dict[str, Any]:
    """Forward FLOPs per token (per position of a segment) and inference tokens/s of the
    measured batch (its real tokens / the median inference latency), where measured."""
    out: dict[str, Any] = {}
    if "flops_fwd_per_example" in measured:
        out["flops_fwd_per_token"] = measured["flops_fwd_per_example"] / max_len
    median = measured.get("latency_infer_s_median")
    if median:
        tokens = int(data.test.lengths[0][: min(batch_size, len(data.test))].sum())
        out["infer_tokens_per_s"] = tokens / median
    return out
