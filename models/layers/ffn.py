"""The dense feed-forward part: Linear(D -> H), GELU, Linear(H -> D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux


class DenseFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """(B, L, D) -> (B, L, D); the mask is unused (a dense FFN is per token)."""
        return self.down(self.dropout(F.gelu(self.up(x)))), NO_AUX
