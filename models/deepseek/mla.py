"""Multi-head Latent Attention (DeepSeek-V2/V3, arXiv 2412.19437 eqs. 1-11), the naive form
(keys and values are up-projected per head; the absorbed form is an inference optimisation of
the same function).

    c_KV = RMSNorm(W_DKV h)                        (B, L, r_kv)  joint KV compression
    k^C  = W_UK c_KV, v = W_UV c_KV                per head: (B, L, H, d_h), (B, L, H, d_v)
    k^R  = RoPE(W_KR h)                            (B, L, d_R)   ONE rotary key shared by heads
    c_Q  = RMSNorm(W_DQ h)                         (B, L, r_q)   low-rank queries
    q^C  = W_UQ c_Q, q^R = RoPE(W_QR c_Q)          per head: (B, L, H, d_h), (B, L, H, d_R)
    o    = softmax([q^C; q^R] . [k^C; k^R] / sqrt(d_h + d_R)) v,  u = W_O [o_1; ...; o_H]

As in DeepSeek's `model.py`, W_DKV and W_KR are one Linear (D -> r_kv + d_R), W_UK and W_UV one
(r_kv -> H (d_h + d_v)), W_UQ and W_QR one (r_q -> H (d_h + d_R)); no biases; the RMSNorms have
eps 1e-6 and a learned weight. RoPE turns consecutive pairs (x_2i, x_2i+1) at position t by
t * 10000^(-2i / d_R) (`model.py`'s complex form), positions 0..L-1 of the padded input (real
tokens come first, so padding never moves them). Padding keys are masked; with `causal`, query t
sees keys <= t only. Attention runs through `scaled_dot_product_attention`, whose default scale
1/sqrt(q width) is the paper's 1/sqrt(d_h + d_R).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import ATTENTION, phase

ROPE_BASE = 10000.0
NORM_EPS = 1e-6


def rope_tables(rope_dim: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (max_len, rope_dim / 2): the angle t * base^(-2i / rope_dim)."""
    theta = ROPE_BASE ** (-torch.arange(0, rope_dim, 2, dtype=torch.float32) / rope_dim)
    angle = torch.outer(torch.arange(max_len, dtype=torch.float32), theta)  # (max_len, d_R/2)
    return torch.cos(angle), torch.sin(angle)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, L, ..., d_R) with cos, sin (L, d_R/2) -> x with each pair (2i, 2i+1) turned."""
    pairs = x.unflatten(-1, (-1, 2))  # (B, L, ..., d_R/2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    extra = x.dim() - 3  # dimensions between L and d_R (heads)
    cos = cos.view(cos.shape[0], *([1] * extra), cos.shape[1]).to(x.dtype)
    sin = sin.view(sin.shape[0], *([1] * extra), sin.shape[1]).to(x.dtype)
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


class MultiHeadLatentAttention(nn.Module):
    phases = (ATTENTION,)

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        q_rank: int,
        kv_rank: int,
        nope_dim: int,
        rope_dim: int,
        v_dim: int,
        max_len: int,
        attn_dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if rope_dim % 2 or min(q_rank, kv_rank, nope_dim, rope_dim, v_dim) < 1:
            raise ValueError(
                f"MLA needs positive ranks and head widths and an even rope_dim; got q_rank "
                f"{q_rank}, kv_rank {kv_rank}, nope {nope_dim}, rope {rope_dim}, v {v_dim}"
            )
        self.heads, self.nope_dim, self.rope_dim, self.v_dim = heads, nope_dim, rope_dim, v_dim
        self.kv_rank = kv_rank
        self.attn_dropout = attn_dropout
        self.causal = causal
        self.wq_a = nn.Linear(dim, q_rank, bias=False)  # W_DQ
        self.q_norm = nn.RMSNorm(q_rank, eps=NORM_EPS)
        self.wq_b = nn.Linear(q_rank, heads * (nope_dim + rope_dim), bias=False)  # W_UQ, W_QR
        self.wkv_a = nn.Linear(dim, kv_rank + rope_dim, bias=False)  # W_DKV, W_KR
        self.kv_norm = nn.RMSNorm(kv_rank, eps=NORM_EPS)
        self.wkv_b = nn.Linear(kv_rank, heads * (nope_dim + v_dim), bias=False)  # W_UK, W_UV
        self.wo = nn.Linear(heads * v_dim, dim, bias=False)  # W_O
        cos, sin = rope_tables(rope_dim, max_len)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) True = real -> (B, L, D)."""
        batch, length, _ = x.shape
        if length > self.cos.shape[0]:
            raise ValueError(f"input length {length} exceeds the rotary table {self.cos.shape[0]}")
        cos, sin = self.cos[:length], self.sin[:length]  # (L, d_R/2) each
        h, dn, dr, dv = self.heads, self.nope_dim, self.rope_dim, self.v_dim
        q = self.wq_b(self.q_norm(self.wq_a(x))).view(batch, length, h, dn + dr)  # (B, L, H, .)
        q_nope, q_rope = q.split([dn, dr], dim=-1)
        q = torch.cat((q_nope, apply_rope(q_rope, cos, sin)), dim=-1)  # (B, L, H, dn + dr)
        kv, k_rope = self.wkv_a(x).split([self.kv_rank, dr], dim=-1)  # (B, L, r_kv), (B, L, dr)
        k_rope = apply_rope(k_rope, cos, sin)  # (B, L, dr), shared by the heads
        kv = self.wkv_b(self.kv_norm(kv)).view(batch, length, h, dn + dv)  # (B, L, H, dn + dv)
        k_nope, v = kv.split([dn, dv], dim=-1)
        k = torch.cat((k_nope, k_rope[:, :, None, :].expand(-1, -1, h, -1)), dim=-1)
        allowed = mask[:, None, None, :]  # (B, 1, 1, L) real keys
        if self.causal:
            order = torch.arange(length, device=x.device)
            allowed = allowed & (order[None, :] <= order[:, None])  # (B, 1, L, L)
        dropout = self.attn_dropout if self.training else 0.0
        with phase(ATTENTION):
            o = F.scaled_dot_product_attention(
                q.transpose(1, 2),
                k.transpose(1, 2),
                v.transpose(1, 2),
                attn_mask=allowed,
                dropout_p=dropout,
            )  # (B, H, L, dv)
        o = o.transpose(1, 2).reshape(batch, length, h * dv)  # (B, L, H dv)
        return self.wo(o), NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): the five projections over every token and
        every query against every key (padding included, as the kernel multiplies them)."""
        batch, length, _ = x_shape
        tokens = batch * length

        def linear(layer: nn.Linear) -> float:
            return 2.0 * tokens * layer.in_features * layer.out_features

        pairs = 2.0 * batch * self.heads * length * length
        return {
            "q_down": linear(self.wq_a),
            "q_up": linear(self.wq_b),
            "kv_down": linear(self.wkv_a),
            "kv_up": linear(self.wkv_b),
            "attn_scores": pairs * (self.nope_dim + self.rope_dim),
            "attn_values": pairs * self.v_dim,
            "out_proj": linear(self.wo),
        }
