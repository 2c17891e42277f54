"""The dense feed-forward part: Linear(D -> H), GELU, Linear(H -> D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import MLP, phase


class DenseFFN(nn.Module):
    phases = (MLP,)

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """(B, L, D) -> (B, L, D); the mask is unused (a dense FFN is per token)."""
        with phase(MLP):
            return self.down(self.dropout(F.gelu(self.up(x)))), NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): both projections over every token, padding
        included."""
        tokens = x_shape[0] * x_shape[1]
        per_token = 2.0 * self.up.in_features * self.up.out_features
        return {"ffn_up": tokens * per_token, "ffn_down": tokens * per_token}
