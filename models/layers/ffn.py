"""The dense feed-forward part: Linear(D -> H), GELU, Linear(H -> D)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import FFN, phase


class DenseFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        self.last_tokens: int | None = None  # B * L of the last forward

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """(B, L, D) -> (B, L, D); the mask is unused (a dense FFN is per token)."""
        self.last_tokens = x.shape[0] * x.shape[1]
        with phase(FFN):
            return self.down(self.dropout(F.gelu(self.up(x)))), NO_AUX

    def analytic_flops(self) -> dict[str, float]:
        """Forward FLOPs of the last call: both projections over every token, padding included."""
        if self.last_tokens is None:
            raise RuntimeError("analytic_flops() needs a forward call first")
        per_token = 2.0 * self.up.in_features * self.up.out_features
        return {"ffn_up": self.last_tokens * per_token, "ffn_down": self.last_tokens * per_token}
