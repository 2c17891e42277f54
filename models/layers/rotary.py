"""The released UoE rotary step, applied to a mixer's input (after the pre-norm, before the
mixer), when `ModelConfig.rope` is on.

The released SMHA (reference/uoe.md §1.5) rotates the hidden state itself, before the gate and
the QKV projection, not q and k. x (B, L, D) is cut into `heads` slices of Dh = D / heads; in each
slice the first half is left as is ("nope") and the second half ("pe") is rotated pairwise:
pair i = (pe[2i], pe[2i+1]) at position t turns by the angle t * theta_i,
theta_i = 10000^(-2i / (Dh/2)), i < Dh/4; the slice then becomes [rotated pe | nope] (the halves
swap places). Positions are 0..L-1 of the padded input (the release pads every input to its
max_seq_len). Since a linear projection follows, this is not the relative-position RoPE of q.k;
it is reproduced as released so that any model can be run on the released backbone.
"""

from __future__ import annotations

import torch
from torch import nn

ROPE_BASE = 10000.0


class RotaryStep(nn.Module):
    def __init__(self, dim: int, heads: int, max_len: int) -> None:
        super().__init__()
        if dim % heads or (dim // heads) % 4:
            raise ValueError(
                f"the rotary step needs a head width D / heads divisible by 4; got D {dim}, "
                f"heads {heads}; change model.dim or model.heads, or set model.rope=false"
            )
        self.heads = heads
        self.head_dim = dim // heads
        rot = self.head_dim // 2  # width of the rotated half
        theta = 1.0 / ROPE_BASE ** (torch.arange(0, rot, 2, dtype=torch.float32) / rot)  # (Dh/4,)
        angle = torch.outer(torch.arange(max_len, dtype=torch.float32), theta)  # (max_len, Dh/4)
        self.register_buffer("cos", torch.cos(angle), persistent=False)
        self.register_buffer("sin", torch.sin(angle), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, D)."""
        batch, length, dim = x.shape
        if length > self.cos.shape[0]:
            raise ValueError(f"input length {length} exceeds the rotary table {self.cos.shape[0]}")
        half = self.head_dim // 2
        slices = x.view(batch, length, self.heads, self.head_dim)  # (B, L, H, Dh)
        nope, pe = slices[..., :half], slices[..., half:]  # each (B, L, H, Dh/2)
        pairs = pe.reshape(batch, length, self.heads, half // 2, 2)  # (B, L, H, Dh/4, 2)
        a, b = pairs[..., 0], pairs[..., 1]  # each (B, L, H, Dh/4)
        cos = self.cos[:length, None, :].to(x.dtype)  # (L, 1, Dh/4)
        sin = self.sin[:length, None, :].to(x.dtype)
        turned = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1)  # (B, L, H, Dh/4, 2)
        out = torch.cat((turned.flatten(-2), nope), dim=-1)  # (B, L, H, Dh)
        return out.reshape(batch, length, dim)
