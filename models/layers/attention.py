"""Dense multi-head self-attention through `scaled_dot_product_attention`, with a padding mask
and, for a language model (`causal=True`), a causal mask: query t sees keys <= t only.

The Q/K/V projection is one (D -> 3D) linear whose output is laid out [q | k | v], each split
into `heads` contiguous slices of D/heads: head h's weights are the column slice h of each,
which is what the UoE decomposition into head-experts relies on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import ATTENTION, phase


class MultiHeadAttention(nn.Module):
    phases = (ATTENTION,)

    def __init__(self, dim: int, heads: int, attn_dropout: float, *, causal: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.attn_dropout = attn_dropout
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        # Keys at padding are excluded; padded query rows still see the real keys (finite
        # outputs), and pooling ignores them.
        key_mask = mask[:, None, None, :]  # (B, 1, 1, L)
        if self.causal:
            # SDPA takes is_causal or a mask, not both: AND them. Query t keeps key 0 whenever
            # the sequence has a real token, so no row is empty.
            key_mask = key_mask & causal_mask(length, x.device)  # (B, 1, L, L)
        dropout = self.attn_dropout if self.training else 0.0
        with phase(ATTENTION):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)
        return self.out(y), NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): every query attends to every key, padding
        included (the kernel multiplies those rows too; with a causal mask as well: SDPA with
        an explicit mask computes the full square)."""
        batch, length, dim = x_shape
        tokens = batch * length
        scores = 2.0 * batch * self.heads * length * length * self.head_dim
        return {
            "qkv_proj": 2.0 * tokens * dim * 3 * dim,
            "attn_scores": scores,
            "attn_values": scores,
            "out_proj": 2.0 * tokens * dim * dim,
        }


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """(L, L) bool, True where query i may see key j: j <= i."""
    positions = torch.arange(length, device=device)  # (L,)
    return positions[None, :] <= positions[:, None]
