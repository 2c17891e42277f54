"""What every model's forward returns (`ModelOutput`), for the classifier and the language model
alike, so the training loop and the measurements read one type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelOutput:
    """logits (B, C) for a classifier, (B, L, V) for a language model (position t predicts
    token t + 1); aux_loss a scalar (already weighted); per-layer routing statistics."""

    logits: torch.Tensor
    aux_loss: torch.Tensor
    layer_stats: tuple[Mapping[str, Mapping[str, torch.Tensor]], ...]
