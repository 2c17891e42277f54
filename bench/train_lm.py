"""The training and evaluation loop of a language-modelling cell: next-token cross-entropy.

The same step as every other cell (`bench.train_step.TrainStep`, whose loss averages the scored
positions of a (B, L, V) output), the same batches, logging, time budget and estimate as
`bench.train`; what differs is the figure: evaluation on dev every `eval_every` steps and after
the last step gives the mean next-token loss in nats per scored token (padding ignored, the
model's aux loss not included), the weights with the lowest dev loss are evaluated once on test.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.train import ProgressFn, _to_device, training_loop
from bench.train_step import IGNORE_INDEX
from suites.config import TrainConfig
from suites.data import Split, TaskData

log = logging.getLogger(__name__)


class NotALanguageModel(ValueError):
    """The model built for a causal task did not return per-position logits."""


@dataclass(frozen=True)
class LMTrainResult:
    """Losses in nats per scored token (test: of the best-dev weights); times in seconds."""

    test_loss_nats: float
    dev_loss_nats: float
    best_step: int
    train_loss_final: float
    train_time_s: float
    train_compute_s: float
    examples_per_s: float
    train_tokens_per_s: float
    test_scored_tokens: int
    test_segment_loss_nats: list[float]  # mean loss of each test segment, in split order
    loss_curve: list[float]
    dev_loss_curve: list[tuple[int, float]]
    train_loss_curve: list[tuple[int, float]]
    dev_curve_examples: list[int]
    dev_curve_train_s: list[float]
    routing: list[dict[str, dict[str, list[float]]]]
    stopped_at_step: int | None = None


def check_lm_output(model: nn.Module, split: Split, num_classes: int, device: torch.device) -> None:
    """Raise NotALanguageModel unless `model` maps (B, L) tokens to (B, L, num_classes) logits."""
    batch = split.select(torch.arange(min(2, len(split))))
    inputs, lengths, _ = _to_device(batch, device)
    model.eval()
    with torch.no_grad():
        logits = model(inputs, lengths).logits
    expected = (len(batch), batch.inputs[0].shape[1], num_classes)
    if tuple(logits.shape) != expected:
        raise NotALanguageModel(
            f"{type(model).__name__} returned logits {tuple(logits.shape)} for a causal "
            f"(language-model) task, expected {expected}: its builder ignored ModelTask.causal"
        )


@torch.no_grad()
def segment_losses(
    model: nn.Module, split: Split, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per segment of `split`: (summed next-token cross-entropy in nats, scored tokens), each
    (N,) float64 / int64."""
    model.eval()
    sums, counts = [], []
    for start in range(0, len(split), batch_size):
        batch = split.select(torch.arange(start, min(start + batch_size, len(split))))
        inputs, lengths, labels = _to_device(batch, device)
        logits = model(inputs, lengths).logits  # (B, L, V)
        loss = F.cross_entropy(
            logits.transpose(1, 2).float(),  # (B, V, L)
            labels,
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )  # (B, L), 0 at ignored positions
        sums.append(loss.double().sum(1).cpu())
        counts.append((labels != IGNORE_INDEX).sum(1).cpu())
    return torch.cat(sums), torch.cat(counts)


def evaluate_loss(
    model: nn.Module, split: Split, batch_size: int, device: torch.device
) -> tuple[float, int]:
    """(summed next-token cross-entropy in nats, scored tokens) over every segment of `split`."""
    sums, counts = segment_losses(model, split, batch_size, device)
    if int(counts.sum()) == 0:
        raise ValueError("no scored token in the split: every label is padding")
    return float(sums.sum()), int(counts.sum())


def mean_loss(model: nn.Module, split: Split, batch_size: int, device: torch.device) -> float:
    total, count = evaluate_loss(model, split, batch_size, device)
    return total / count


def train_language_model(
    model: nn.Module,
    data: TaskData,
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None = None,
) -> LMTrainResult:
    """Train on data.train, select the lowest dev loss, report the test loss of those weights."""
    loop = training_loop(
        model, data, cfg, seed=seed, device=device, progress=progress,
        dev_score=lambda m, dev: mean_loss(m, dev, cfg.batch_size, device),
        higher_is_better=False,
    )  # fmt: skip
    sums, counts = segment_losses(model, data.test, cfg.batch_size, device)
    test_total, test_count = float(sums.sum()), int(counts.sum())
    if test_count == 0:
        raise ValueError("no scored token in the test split: every label is padding")
    return LMTrainResult(
        test_loss_nats=test_total / test_count,
        dev_loss_nats=loop.best_score,
        best_step=loop.best_step,
        train_loss_final=loop.loss_curve[-1],
        train_time_s=loop.train_time_s,
        train_compute_s=loop.compute_s,
        examples_per_s=loop.examples / loop.compute_s,
        train_tokens_per_s=loop.tokens / loop.compute_s,
        test_scored_tokens=test_count,
        test_segment_loss_nats=(sums / counts.clamp_min(1)).tolist(),
        loss_curve=loop.loss_curve,
        dev_loss_curve=loop.dev_curve,
        train_loss_curve=loop.train_loss_curve,
        dev_curve_examples=loop.dev_curve_examples,
        dev_curve_train_s=loop.dev_curve_train_s,
        routing=loop.routing,
        stopped_at_step=loop.stopped_at_step,
    )
