"""Token embedding plus learned absolute position embedding (the LRA PyTorch protocol)."""

from __future__ import annotations

import torch
from torch import nn


class TokenPositionEmbedding(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, dim: int, dropout: float) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, L, D)."""
        length = tokens.shape[1]
        if length > self.positions.num_embeddings:
            raise ValueError(
                f"input length {length} exceeds max_len {self.positions.num_embeddings}"
            )
        positions = torch.arange(length, device=tokens.device)  # (L,)
        return self.dropout(self.tokens(tokens) + self.positions(positions)[None])
