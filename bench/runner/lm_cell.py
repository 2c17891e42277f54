"""The pieces of a language-modelling cell (a task with `TaskSpec.causal`, suites/lm) that
`bench.runner.cell` runs: build the model in its causal form, train it on next-token loss, probe
its causality, and its figures.

Outcomes as every cell (`bench.runner.cell`), plus: a model whose builder raises `NoCausalForm`
is `skipped` with its reason. The record's figures: the loss in nats, perplexity (word level) or
bits per byte (byte level), token throughput, forward FLOPs per token, the causality probe's
verdict (`models.causality`); its `data` says the token unit, the evaluation protocol and the
corpus's hashes and sizes.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from bench.cell_id import CellId
from bench.runner.plan import ResolvedPlan
from bench.train import ProgressFn
from bench.train_lm import LMTrainResult, check_lm_output, train_language_model
from models.causality import CausalityProbe, probe_causality
from models.registry import build_model
from suites.lm.segments import LMTaskData

PROBE_EXAMPLES = 8  # test segments the causality probe runs on


def build_causal(resolved: ResolvedPlan, cell: CellId) -> torch.nn.Module:
    """The cell's model in its causal form; `NoCausalForm` (the cell is skipped) passes up."""
    spec = resolved.tasks[cell.task]
    cfg = resolved.config(cell.task, cell.variant)
    task = spec.model_task(cfg.data.max_len)
    return build_model(cell.model, cfg.model, task, resolved.own(cell.task, cell.variant))


def train(
    resolved: ResolvedPlan,
    cell: CellId,
    model: torch.nn.Module,
    data: LMTaskData,
    device: torch.device,
    progress: ProgressFn | None,
) -> LMTrainResult:
    """Check the model returns per-position logits, then train it on next-token loss."""
    spec = resolved.tasks[cell.task]
    cfg = resolved.config(cell.task, cell.variant)
    model.to(device)
    check_lm_output(model, data.train, spec.num_classes, device)
    return train_language_model(
        model, data, cfg.train, seed=cell.seed, device=device, progress=progress
    )


def lm_cell_metrics(
    result: LMTrainResult, probe: dict[str, Any], data: LMTaskData, measured: dict[str, Any],
    resolved: ResolvedPlan, cell: CellId,
) -> dict[str, Any]:  # fmt: skip
    """The LM figures of a trained, probed and measured cell (the measured ones are added by
    the caller): loss and its headline, the probe, FLOPs per token and inference tokens/s."""
    cfg = resolved.config(cell.task, cell.variant)
    return {
        **lm_metrics(result, data.info.token_unit),
        **probe,
        **per_token_metrics(measured, data, cfg.data.max_len, cfg.train.batch_size),
    }


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


def probe_figures(
    model: torch.nn.Module, data: LMTaskData, vocab_size: int, seed: int, device: torch.device
) -> dict[str, Any]:
    """The probe's figures, or `causal_probe_error` when it refuses to judge the model (not
    deterministic in eval mode): the cell's loss stands but, unprobed, is never ranked."""
    try:
        return probe_metrics(run_probe(model, data, vocab_size, seed, device))
    except ValueError as exc:  # recorded in the cell's figures, never ranked
        return {"causal_probe_error": f"{exc}"[:300]}


def probe_metrics(probe: CausalityProbe) -> dict[str, Any]:
    """The probe's figures for the record (declared in suites/lm/metrics.py)."""
    return {
        "causal_leak": int(probe.leaks),
        "causal_max_rel_change": probe.max_rel_change,
        "causal_fraction_changed": probe.fraction_changed,
        "causal_probe": {k: v for k, v in probe.to_record().items() if k != "leaks"},
    }


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
        "test_segment_loss_nats": result.test_segment_loss_nats,
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
