"""Pooling and classification heads: masked mean pooling (or the released sum over real tokens
divided by the padded length), a 2-layer MLP head, and the dual-encoder head over
[u, v, u*v, u-v] for two-input tasks (retrieval)."""

from __future__ import annotations

import torch
from torch import nn

from models.config import POOLS


def masked_mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D), (B, L) bool -> (B, D): the mean over real tokens only."""
    weights = mask.to(hidden.dtype)[..., None]  # (B, L, 1)
    counts = weights.sum(dim=1).clamp_min(1.0)  # (B, 1)
    return (hidden * weights).sum(dim=1) / counts


def sum_over_length_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D), (B, L) bool -> (B, D): the sum over real tokens divided by L, the padded length
    (the released head: the mean over all L positions of the masked final states)."""
    weights = mask.to(hidden.dtype)[..., None]  # (B, L, 1)
    return (hidden * weights).sum(dim=1) / hidden.shape[1]


def pool(kind: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pool (B, L, D) -> (B, D) by `kind`: "mean" (over real tokens) or "sum_over_L"."""
    if kind == "mean":
        return masked_mean_pool(hidden, mask)
    if kind == "sum_over_L":
        return sum_over_length_pool(hidden, mask)
    raise ValueError(f"unknown pooling {kind!r}; choose one of {', '.join(POOLS)} (model.pool)")


class ClassificationHead(nn.Module):
    """(B, in_dim) -> (B, C) logits through Linear, ReLU, Linear."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)

    def analytic_flops(self, x_shape: torch.Size) -> dict[str, float]:
        """Forward FLOPs of a call on pooled features (B, in_dim): the two linear layers."""
        first, second = self.net[0], self.net[2]
        per_row = first.in_features * first.out_features + second.in_features * second.out_features
        return {"head": 2.0 * x_shape[0] * per_row}


def dual_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, D), (B, D) -> (B, 4D): [u, v, u*v, u-v], the LRA retrieval head input."""
    return torch.cat([u, v, u * v, u - v], dim=-1)
