"""The one training and evaluation loop every model shares.

Each step is `bench.train_step.TrainStep` (AdamW, linear warmup then linear decay to zero,
gradient-norm clipping; the measurements time the same step); the training loss is logged every
`log_every(steps)` steps (about 100 points, so the loss curve is a curve) and after the last;
evaluation on the dev split every `eval_every` steps and after the last step, each recorded with
the training examples seen and the training-step seconds spent so far (the equal-budget views);
the weights with the best dev accuracy are evaluated once on test (the test split never selects
anything). A NaN or infinite loss stops training with `TrainingDiverged`.

`train.time_budget_s` bounds the loop's wall time: once spent, the step just done is evaluated
and training ends there, as if it had been the last (`TrainResult.stopped_at_step`). Once the
first steps are timed, a training estimated at over `ANNOUNCE_ABOVE_S` is announced as a
warning, with the budget that bounds it or how to set one.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from bench.train_step import IGNORE_INDEX, TrainingDiverged, TrainStep, lr_factor
from suites.config import TrainConfig
from suites.data import Split, TaskData

__all__ = [
    "TrainResult",
    "TrainingDiverged",
    "evaluate",
    "log_every",
    "lr_factor",
    "predict",
    "train_and_evaluate",
]

# Called after each step with (step, loss); the CLI draws a progress bar with it.
ProgressFn = Callable[[int, float], None]

log = logging.getLogger(__name__)

ESTIMATE_AFTER_STEPS = 3  # steps timed before the estimate of the whole training
ANNOUNCE_ABOVE_S = 600.0  # an estimate above this is announced


@dataclass(frozen=True)
class TrainResult:
    """accuracy: test accuracy of the best-dev weights; times in seconds."""

    accuracy: float
    dev_accuracy: float
    best_step: int
    train_loss_final: float
    train_time_s: float
    train_compute_s: float
    examples_per_s: float
    loss_curve: list[float]  # mean training loss of each eval interval
    dev_curve: list[tuple[int, float]]  # (step, dev accuracy)
    train_loss_curve: list[tuple[int, float]]  # (step, mean loss since the previous point)
    dev_curve_examples: list[int]  # training examples seen at each evaluation
    dev_curve_train_s: list[float]  # training-step seconds spent by each evaluation
    routing: list[dict[str, dict[str, list[float]]]]  # last training batch's routing stats
    test_predicted: torch.Tensor  # (N_test,) int64: the best weights' class for each test example
    stopped_at_step: int | None = None  # the last step done when the time budget ran out


def log_every(steps: int) -> int:
    """Steps between two points of the training-loss curve: about 100 points over the run."""
    return max(1, steps // 100)


def batches(split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Split]:
    """Endless shuffled mini-batches; each pass over the split is a new permutation."""
    if len(split) == 0:
        raise ValueError("cannot draw batches from an empty training split")
    while True:
        order = torch.randperm(len(split), generator=generator)
        for start in range(0, len(split) - batch_size + 1, batch_size):
            yield split.select(order[start : start + batch_size])
        if len(split) < batch_size:  # a split smaller than one batch is one short batch
            yield split.select(order)


@torch.no_grad()
def predict(model: nn.Module, split: Split, batch_size: int, device: torch.device) -> torch.Tensor:
    """The predicted class (argmax of the logits) of every example of `split`: (N,) int64."""
    model.eval()
    predicted = []
    for start in range(0, len(split), batch_size):
        batch = split.select(torch.arange(start, min(start + batch_size, len(split))))
        logits = model(*_to_device(batch, device)[:2]).logits  # (B, classes)
        predicted.append(logits.argmax(-1).cpu())
    return torch.cat(predicted) if predicted else torch.empty(0, dtype=torch.int64)


def evaluate(model: nn.Module, split: Split, batch_size: int, device: torch.device) -> float:
    """Accuracy over every example of `split` (no example dropped, no partial-batch bias)."""
    return _accuracy(predict(model, split, batch_size, device), split)


def _accuracy(predicted: torch.Tensor, split: Split) -> float:
    return int((predicted == split.labels).sum()) / len(split)


def train_and_evaluate(
    model: nn.Module,
    data: TaskData,
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train `model` on data.train, select on data.dev, report test accuracy of the best weights."""
    loop = training_loop(
        model, data, cfg, seed=seed, device=device, progress=progress,
        dev_score=lambda m, dev: evaluate(m, dev, cfg.batch_size, device),
        higher_is_better=True,
    )  # fmt: skip
    test_predicted = predict(model, data.test, cfg.batch_size, device)
    return TrainResult(
        accuracy=_accuracy(test_predicted, data.test),
        dev_accuracy=loop.best_score,
        best_step=loop.best_step,
        train_loss_final=loop.loss_curve[-1],
        train_time_s=loop.train_time_s,
        train_compute_s=loop.compute_s,
        examples_per_s=loop.examples / loop.compute_s,
        loss_curve=loop.loss_curve,
        dev_curve=loop.dev_curve,
        train_loss_curve=loop.train_loss_curve,
        dev_curve_examples=loop.dev_curve_examples,
        dev_curve_train_s=loop.dev_curve_train_s,
        routing=loop.routing,
        test_predicted=test_predicted,
        stopped_at_step=loop.stopped_at_step,
    )


@dataclass(frozen=True)
class LoopResult:
    """What the shared training loop measured; the model holds the best weights afterwards."""

    best_score: float  # the dev figure of the selected weights
    best_step: int
    loss_curve: list[float]  # mean training loss between evaluations
    dev_curve: list[tuple[int, float]]  # (step, dev figure)
    train_loss_curve: list[tuple[int, float]]  # (step, mean loss since the last point)
    dev_curve_examples: list[int]
    dev_curve_train_s: list[float]
    train_time_s: float  # wall time of the loop, evaluations included
    compute_s: float  # training steps only
    examples: int
    tokens: int  # scored labels (`IGNORE_INDEX` excluded) seen in training
    routing: list[dict[str, dict[str, list[float]]]]
    stopped_at_step: int | None


def training_loop(
    model: nn.Module,
    data: TaskData,
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    progress: ProgressFn | None,
    dev_score: Callable[[nn.Module, Split], float],
    higher_is_better: bool,
) -> LoopResult:
    """The steps every objective shares: train on data.train, score data.dev (`dev_score`)
    every cfg.eval_every steps and at the end, keep the best weights (loaded into `model`
    before returning), log the training loss, stop on cfg.time_budget_s."""
    if cfg.steps < 1:
        raise ValueError("train.steps must be at least 1")
    model.to(device)
    train_step = TrainStep(model, cfg)
    generator = torch.Generator().manual_seed(seed)
    dev = _eval_subset(data.dev, cfg.eval_examples, generator)
    stream = batches(data.train, cfg.batch_size, generator)

    best = (-math.inf if higher_is_better else math.inf, 0, copy.deepcopy(model.state_dict()))
    loss_curve: list[float] = []
    dev_curve: list[tuple[int, float]] = []
    interval_losses: list[float] = []
    train_loss_curve: list[tuple[int, float]] = []
    log_losses: list[float] = []
    every = log_every(cfg.steps)
    dev_examples: list[int] = []
    dev_train_s: list[float] = []
    compute_s = 0.0
    examples = tokens = 0
    stopped_at_step = None
    started = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        batch = next(stream)
        t0 = time.perf_counter()
        model.train()
        loss_value, output = train_step(*_to_device(batch, device))
        compute_s += time.perf_counter() - t0
        examples += len(batch)
        tokens += int((batch.labels != IGNORE_INDEX).sum())
        interval_losses.append(loss_value)
        log_losses.append(loss_value)
        if progress is not None:
            progress(step, loss_value)
        elapsed_s = time.perf_counter() - started
        if step == ESTIMATE_AFTER_STEPS < cfg.steps:
            _announce_estimate(elapsed_s / step, cfg)
        over_budget = 0 < cfg.time_budget_s <= elapsed_s and step < cfg.steps
        if step % every == 0 or step == cfg.steps or over_budget:
            train_loss_curve.append((step, sum(log_losses) / len(log_losses)))
            log_losses = []
        if step % cfg.eval_every == 0 or step == cfg.steps or over_budget:
            score = dev_score(model, dev)
            dev_curve.append((step, score))
            dev_examples.append(examples)
            dev_train_s.append(compute_s)
            loss_curve.append(sum(interval_losses) / len(interval_losses))
            interval_losses = []
            if score > best[0] if higher_is_better else score < best[0]:
                best = (score, step, copy.deepcopy(model.state_dict()))
        if over_budget:
            stopped_at_step = step
            log.warning(
                "training stopped on train.time_budget_s=%g after step %d of train.steps=%d",
                cfg.time_budget_s,
                step,
                cfg.steps,
            )
            break
    train_time_s = time.perf_counter() - started
    model.load_state_dict(best[2])
    return LoopResult(
        best_score=best[0],
        best_step=best[1],
        loss_curve=loss_curve,
        dev_curve=dev_curve,
        train_loss_curve=train_loss_curve,
        dev_curve_examples=dev_examples,
        dev_curve_train_s=dev_train_s,
        train_time_s=train_time_s,
        compute_s=compute_s,
        examples=examples,
        tokens=tokens,
        routing=_routing_lists(output.layer_stats),
        stopped_at_step=stopped_at_step,
    )


def _announce_estimate(step_s: float, cfg: TrainConfig) -> None:
    """Warn when `cfg.steps` steps of `step_s` seconds (the first steps' mean, evaluations so
    far included) would take over ANNOUNCE_ABOVE_S."""
    estimate_s = step_s * cfg.steps
    if estimate_s <= ANNOUNCE_ABOVE_S:
        return
    bound = (
        f"train.time_budget_s={cfg.time_budget_s:g} stops it after {cfg.time_budget_s:g} s"
        if cfg.time_budget_s
        else "bound it with --set train.time_budget_s=SECONDS, or lower train.steps"
    )
    log.warning(
        "estimated training time %.3g s (%.2g h): train.steps=%d at %.3g s per step over the "
        "first %d steps; %s",
        estimate_s,
        estimate_s / 3600,
        cfg.steps,
        step_s,
        ESTIMATE_AFTER_STEPS,
        bound,
    )


def _to_device(
    batch: Split, device: torch.device
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], torch.Tensor]:
    return (
        tuple(t.to(device) for t in batch.inputs),
        tuple(n.to(device) for n in batch.lengths),
        batch.labels.to(device),
    )


def _eval_subset(split: Split, n: int, generator: torch.Generator) -> Split:
    """The whole split (n == 0) or a fixed random subset of n examples, drawn once."""
    if n == 0 or n >= len(split):
        return split
    return split.select(torch.randperm(len(split), generator=generator)[:n].sort().values)


def _routing_lists(layer_stats: tuple) -> list[dict[str, dict[str, list[float]]]]:
    """Routing statistics as JSON-ready lists, one dict per layer."""
    return [
        {
            part: {k: torch.as_tensor(v).detach().cpu().flatten().tolist() for k, v in s.items()}
            for part, s in layer.items()
        }
        for layer in layer_stats
    ]
