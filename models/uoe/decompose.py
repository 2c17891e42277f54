"""Equivalent decomposition: dense MLP / attention weights <-> stacked expert weights, exactly.

MLP (D -> H -> D): the up weight is split by output columns and the down weight by input rows
(the Megatron tensor-parallel split), so y = sum_e W2[e] gelu(W1[e] x + b1[e]) + b2. The down
bias b2 belongs once to the layer, not to any expert.

Attention: head h is the column slice h of each of q, k, v (the dense qkv Linear is laid out
[q | k | v], each in `heads` slices of D/heads) and the row slice h of the output projection;
so MHA(x) = sum_h W_o[h] Attn_h(x) + b_o, with b_o again once per layer.

Expert weights are stacked as (E, in, out) so `models.kernels.grouped_mm` can multiply them.
All functions here are pure tensor reshuffles (no copies of autograd history are kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MLPExperts:
    """up_weight (E, D, Hs), up_bias (E, Hs), down_weight (E, Hs, D), down_bias (D,) shared."""

    up_weight: torch.Tensor
    up_bias: torch.Tensor
    down_weight: torch.Tensor
    down_bias: torch.Tensor


@dataclass(frozen=True)
class AttentionExperts:
    """qkv_weight (E, D, 3 Dh) laid out [q_e | k_e | v_e], qkv_bias (E, 3 Dh),
    out_weight (E, Dh, D), out_bias (D,) shared."""

    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor
    out_weight: torch.Tensor
    out_bias: torch.Tensor


def _check_divisible(total: int, parts: int, what: str) -> int:
    if parts < 1 or total % parts:
        raise ValueError(
            f"{what} {total} cannot be split into {parts} equal experts; choose a number of "
            f"experts that divides it (e.g. --set model.experts=...)"
        )
    return total // parts


def split_mlp(
    up_weight: torch.Tensor,
    up_bias: torch.Tensor,
    down_weight: torch.Tensor,
    down_bias: torch.Tensor,
    experts: int,
) -> MLPExperts:
    """Dense nn.Linear weights up (H, D), (H,) and down (D, H), (D,) -> E experts of H/E."""
    hidden, dim = up_weight.shape
    width = _check_divisible(hidden, experts, "MLP hidden size")
    return MLPExperts(
        up_weight=up_weight.detach().view(experts, width, dim).transpose(1, 2).contiguous(),
        up_bias=up_bias.detach().view(experts, width).clone(),
        down_weight=down_weight.detach().view(dim, experts, width).permute(1, 2, 0).contiguous(),
        down_bias=down_bias.detach().clone(),
    )


def merge_mlp(parts: MLPExperts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of `split_mlp`: (up_weight (H, D), up_bias, down_weight (D, H), down_bias)."""
    experts, dim, width = parts.up_weight.shape
    up_weight = parts.up_weight.detach().transpose(1, 2).reshape(experts * width, dim)
    down_weight = parts.down_weight.detach().permute(2, 0, 1).reshape(dim, experts * width)
    return (
        up_weight.contiguous(),
        parts.up_bias.detach().reshape(-1).clone(),
        down_weight.contiguous(),
        parts.down_bias.detach().clone(),
    )


def split_attention(
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor,
    out_weight: torch.Tensor,
    out_bias: torch.Tensor,
    heads: int,
) -> AttentionExperts:
    """Dense qkv (3D, D), (3D,) and out (D, D), (D,) -> `heads` head-experts."""
    dim = qkv_weight.shape[1]
    head_dim = _check_divisible(dim, heads, "attention dim")
    qkv = qkv_weight.detach().view(3, heads, head_dim, dim)  # (3, E, Dh, D)
    return AttentionExperts(
        qkv_weight=qkv.permute(1, 3, 0, 2).reshape(heads, dim, 3 * head_dim).contiguous(),
        qkv_bias=qkv_bias.detach().view(3, heads, head_dim).permute(1, 0, 2).reshape(heads, -1),
        out_weight=out_weight.detach().view(dim, heads, head_dim).permute(1, 2, 0).contiguous(),
        out_bias=out_bias.detach().clone(),
    )


def merge_attention(
    parts: AttentionExperts,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of `split_attention`: (qkv_weight (3D, D), qkv_bias, out_weight, out_bias)."""
    heads, dim, three_dh = parts.qkv_weight.shape
    head_dim = three_dh // 3
    qkv = parts.qkv_weight.detach().view(heads, dim, 3, head_dim).permute(2, 0, 3, 1)
    bias = parts.qkv_bias.detach().view(heads, 3, head_dim).permute(1, 0, 2)
    out = parts.out_weight.detach().permute(2, 0, 1).reshape(dim, heads * head_dim)
    return (
        qkv.reshape(3 * dim, dim).contiguous(),
        bias.reshape(-1).contiguous(),
        out.contiguous(),
        parts.out_bias.detach().clone(),
    )
