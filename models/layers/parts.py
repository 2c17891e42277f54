"""The contract between the encoder and its swappable parts (token mixers and feed-forward parts).

A part is an `nn.Module` whose forward takes `(x (B, L, D), mask (B, L) bool, True = real token)`
and returns `(y (B, L, D), PartAux)`. Dense parts return `NO_AUX`; MoE parts put their weighted
auxiliary loss and their routing statistics there, so the training loop and the measurements
need no model-specific code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch


@dataclass(frozen=True)
class PartAux:
    """What a part reports besides its output.

    loss: a scalar already multiplied by its weight, added to the task loss; None if none.
    stats: routing statistics (tokens per expert, load, dropped fraction, ...) as tensors.
    """

    loss: torch.Tensor | None = None
    stats: Mapping[str, torch.Tensor] = field(default_factory=lambda: MappingProxyType({}))


NO_AUX = PartAux()


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) int lengths -> (B, max_len) bool mask, True at real tokens."""
    positions = torch.arange(max_len, device=lengths.device)  # (L,)
    return positions[None, :] < lengths[:, None]  # (B, L)
