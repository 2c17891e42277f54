"""Linformer attention: keys and values projected along the sequence to a fixed length k
(Wang et al. 2020); the `linformer` model (baselines/linformer.py) uses it as its mixer.

Per head, K' = E K and V' = F V with learned E, F of shape (k, max_len), then softmax attention of
the L queries over the k projected slots: O(L k) instead of O(L^2). Choices made here:

- When k >= max_len there is nothing to compress and k = max_len is used (the slots then cost as
  much as full attention); `proj_len` records the k in use.
- Padding is masked before the projection: padded keys and values are zeroed, so they enter no
  slot. A slot whose projection rows (of E and of F) put zero weight on every real token is an
  empty summary and is masked out of the softmax like a padded key; with dense learned E, F this
  never happens, with E = F = identity it makes Linformer exactly full attention with a padding
  mask (tested).
- Inputs shorter than max_len use the first L columns of E and F.
- `per_head=False`: one E and one F per layer, shared by the heads (the paper's headwise
  sharing); `per_head=True`: each head has its own.
- E, F start as N(0, 1/max_len) so that a slot has the scale of one key.

Same Q/K/V and output layout as models/layers/attention.py; the attention over the slots goes
through `scaled_dot_product_attention`, like full attention, so latencies compare like for like.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import ATTENTION, SEQ_PROJ, phase


class LinformerAttention(nn.Module):
    """Multi-head attention of every query over `proj_len` learned summaries of the keys and
    values (module doc); `per_head` gives each head its own projections."""

    phases = (SEQ_PROJ, ATTENTION)

    def __init__(
        self,
        dim: int,
        heads: int,
        max_len: int,
        proj_len: int,
        *,
        per_head: bool = False,
        attn_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        if proj_len < 1:
            raise ValueError(f"proj_len must be >= 1, got {proj_len} (set model.proj_len)")
        self.heads = heads
        self.head_dim = dim // heads
        self.max_len = max_len
        self.proj_len = min(proj_len, max_len)
        self.per_head = per_head
        self.attn_dropout = attn_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        shape = (heads, self.proj_len, max_len) if per_head else (self.proj_len, max_len)
        std = 1.0 / math.sqrt(max_len)
        self.key_proj = nn.Parameter(torch.randn(shape) * std)  # E: ([H,] k, max_len)
        self.value_proj = nn.Parameter(torch.randn(shape) * std)  # F: ([H,] k, max_len)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        batch, length, dim = x.shape
        if length > self.max_len:
            raise ValueError(
                f"sequence length {length} exceeds the Linformer projection length {self.max_len}; "
                "build the model with max_len >= the data's max_len"
            )
        qkv = self.qkv(x).view(batch, length, 3, self.heads, self.head_dim)  # (B, L, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, Dh)
        with phase(SEQ_PROJ):
            k_slots, v_slots, slot_mask = self._project(k, v, mask)
        dropout = self.attn_dropout if self.training else 0.0
        with phase(ATTENTION):
            y = F.scaled_dot_product_attention(
                q, k_slots, v_slots, attn_mask=slot_mask, dropout_p=dropout
            )  # (B, H, L, Dh)
        y = y.transpose(1, 2).reshape(batch, length, dim)  # (B, L, D)
        return self.out(y), NO_AUX

    def _project(
        self, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k, v (B, H, L, Dh), mask (B, L) -> the k slots of each, (B, H, k, Dh), and the slots
        that summarise at least one real token, (B, H or 1, 1, k) bool."""
        length = k.shape[2]
        real = mask[:, None, :, None].to(k.dtype)  # (B, 1, L, 1)
        e = self.key_proj[..., :length]  # ([H,] k, L)
        f = self.value_proj[..., :length]  # ([H,] k, L)
        k_slots = e @ (k * real)  # (B, H, k, Dh)
        v_slots = f @ (v * real)  # (B, H, k, Dh)
        with torch.no_grad():
            support = e.abs() + f.abs()  # ([H,] k, L)
            if self.per_head:
                weight_on_real = torch.einsum("hkl,bl->bhk", support, mask.to(k.dtype))
            else:
                weight_on_real = torch.einsum("kl,bl->bk", support, mask.to(k.dtype))[:, None]
            slot_mask = (weight_on_real > 0)[:, :, None, :]  # (B, H or 1, 1, k)
        return k_slots, v_slots, slot_mask

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D) (2 per multiply-add, matmuls only)."""
        batch, length, dim = x_shape
        k = self.proj_len
        rows = batch * length
        projections = self.heads if self.per_head else 1
        return {
            "qkv_proj": 2.0 * rows * dim * 3 * dim,
            "seq_proj": 2.0 * 2 * batch * k * length * dim,  # E K and F V, every head
            "slot_mask": 2.0 * batch * projections * k * length,  # weight of real tokens per slot
            "attn_scores": 2.0 * rows * k * dim,
            "attn_values": 2.0 * rows * k * dim,
            "out_proj": 2.0 * rows * dim * dim,
        }
