"""One training step, the one definition both training (`bench.train`) and its measurement
(`bench.measure.cell`: latency, memory, profiler trace) run, so the timed step is the step that
trains: the configured AdamW (betas 0.9/0.999, eps 1e-6, `train.weight_decay`), the linear
warmup-then-decay schedule, cross-entropy (per example, or per scored
position of a language model) plus the model's aux loss, a NaN/inf check, backward,
gradient-norm clipping, the optimizer and schedule steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from suites.config import TrainConfig


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based): linear up, linear down."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


IGNORE_INDEX = -100  # a language model's padded position (suites.lm.segments.IGNORE_INDEX)


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: of each example's class (logits (B, C), labels (B,)), or of each
    scored position's next token for a language model (logits (B, L, V), labels (B, L) with
    IGNORE_INDEX at padding)."""
    if logits.dim() == 3:
        if labels.shape != logits.shape[:2]:
            raise ValueError(
                f"language-model logits {tuple(logits.shape)} need labels (B, L), got "
                f"{tuple(labels.shape)}"
            )
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    return F.cross_entropy(logits, labels)


class TrainStep:
    """`step(inputs, lengths, labels)` trains `model` by one optimizer step and returns the loss.

    inputs / lengths: tuples of (B, L) int64 tokens and (B,) lengths (two of each for a dual
    encoder), labels (B,), all on the model's device.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        self.model = model
        self.cfg = cfg
        self.optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=cfg.lr,
            betas=(0.9, 0.999),
            eps=1e-6,
            weight_decay=cfg.weight_decay,
        )
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, cfg.warmup_steps, cfg.steps)
        )
        self.steps_done = 0

    def loss_and_backward(
        self,
        inputs: tuple[torch.Tensor, ...],
        lengths: tuple[torch.Tensor, ...],
        labels: torch.Tensor,
    ) -> tuple[float, Any]:
        """Forward, loss, the divergence check, fresh gradients and backward: (loss, output)."""
        output = self.model(inputs, lengths)
        loss = task_loss(output.logits, labels) + output.aux_loss
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            step = self.steps_done + 1
            raise TrainingDiverged(f"loss became {loss_value} at step {step}; lower train.lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return loss_value, output

    def __call__(
        self,
        inputs: tuple[torch.Tensor, ...],
        lengths: tuple[torch.Tensor, ...],
        labels: torch.Tensor,
    ) -> tuple[float, Any]:
        """One whole step: loss and backward, clipping, optimizer and schedule: (loss, output)."""
        loss_value, output = self.loss_and_backward(inputs, lengths, labels)
        if self.cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.steps_done += 1
        return loss_value, output
