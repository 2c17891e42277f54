"""The DeepSeekMoE FFN part: fine-grained routed SwiGLU experts (dropless, grouped GEMMs) beside
always-active shared experts, for DeepSeekMoE (softmax router, expert-level balance loss) and
DeepSeek-V3 (sigmoid router with a balancing bias, sequence-wise balance loss).

`deepseek_ffn(cfg)` is a `CompositePart`: `shared` (one dense SwiGLU FFN of width
shared_experts x expert_width: K_s experts that every token uses sum to one wider FFN, as in
DeepSeek's `model.py`) plus `routed` (`RoutedExperts`); the outputs add. Padding tokens are never
routed (routed output 0) and never counted in a load, a loss or a bias update; the shared
experts, being per-token dense FFNs, run on every position like `DenseFFN`.

DeepSeek-V3's bias update happens in `RoutedExperts.forward`, in training mode only, under
`torch.no_grad()`, AFTER the call's tokens were routed with the old bias: a training step's
forward routes with b, then moves b by gamma * sign(mean load - load) over that step's real
tokens, so the next step routes with the new bias (the paper's "at the end of each step"). A dual
encoder calls the part twice per step and so updates it twice. Evaluation (`model.eval()`)
never moves it. The bias is a buffer (saved with the model, outside the optimizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.deepseek.routing import (
    bias_step,
    sequence_balance_loss,
    sigmoid_bias_top_k,
    softmax_top_k,
)
from models.kernels import Dispatch, permute, unpermute
from models.kernels.dispatch import multiplied_rows
from models.layers.composite import CompositePart
from models.layers.lazy_stats import LazyStats
from models.layers.parts import NO_AUX, PartAux
from models.layers.ranges import COMBINE, DISPATCH, EXPERT_GEMM, MLP, ROUTER, phase
from models.moe.experts import MoEConfig, MoEFFN
from models.moe.routing import STAT_KEYS, Routing, balance_loss, load_stats

ROUTERS = ("softmax", "sigmoid_bias")


@dataclass(frozen=True)
class DeepSeekFFNConfig:
    """router: "softmax" (DeepSeekMoE: expert-level balance loss over the call's tokens) or
    "sigmoid_bias" (DeepSeek-V3: bias balancing, sequence-wise balance loss).
    balance_weight: alpha1 (softmax) or alpha (sigmoid_bias); bias_update_speed: gamma
    (sigmoid_bias only); routed_scaling, groups, topk_groups: V3's gate scale and group limit."""

    dim: int
    expert_width: int
    routed_experts: int
    active_experts: int
    shared_experts: int
    router: str
    balance_weight: float = 0.0
    bias_update_speed: float = 0.0
    routed_scaling: float = 1.0
    groups: int = 1
    topk_groups: int = 1
    dropout: float = 0.0
    impl: str | None = None  # force a grouped_mm implementation (tests); None = dispatcher

    def __post_init__(self) -> None:
        if self.router not in ROUTERS:
            raise ValueError(f"router must be one of {ROUTERS}, got {self.router!r}")
        if not 1 <= self.active_experts <= self.routed_experts:
            raise ValueError(
                f"active_experts={self.active_experts} must be in 1..routed_experts="
                f"{self.routed_experts}"
            )
        if self.router == "softmax" and (self.bias_update_speed or self.groups != 1):
            raise ValueError("bias balancing and expert groups belong to the sigmoid_bias router")
        if self.groups > 1:
            size = self.routed_experts // self.groups
            if self.routed_experts % self.groups or size < 2:
                raise ValueError(
                    f"{self.groups} groups must split {self.routed_experts} routed experts "
                    "into equal groups of >= 2 (a group scores by its two best experts)"
                )
            if not 1 <= self.topk_groups <= self.groups:
                raise ValueError(f"topk_groups={self.topk_groups} must be in 1..{self.groups}")
            if self.active_experts > self.topk_groups * size:
                raise ValueError(
                    f"active_experts={self.active_experts} exceeds the {self.topk_groups} x "
                    f"{size} experts of the kept groups"
                )


class SwiGLUFFN(nn.Module):
    """A dense SwiGLU FFN without biases, W2 (SiLU(x W1) * x W3): DeepSeek's shared experts."""

    phases = (MLP,)

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """(B, L, D) -> (B, L, D); the mask is unused (per token, like `DenseFFN`)."""
        with phase(MLP):
            hidden = F.silu(self.w1(x)) * self.w3(x)  # (B, L, H)
            return self.w2(self.dropout(hidden)), NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        """Forward FLOPs of a call on x (B, L, D): three projections over every token."""
        tokens = x_shape[0] * x_shape[1]
        per = 2.0 * tokens * self.w1.in_features * self.w1.out_features
        return {"ffn_gate": per, "ffn_up": per, "ffn_down": per}


class RoutedExperts(MoEFFN):
    """DeepSeek's routed experts: `MoEFFN`'s SwiGLU experts and grouped GEMMs (its weights,
    `_experts`, `analytic_flops`, `inactive_parameter_count`), DeepSeek's routers and losses."""

    def __init__(self, cfg: DeepSeekFFNConfig) -> None:
        super().__init__(
            MoEConfig(
                dim=cfg.dim,
                hidden=cfg.expert_width,
                experts=cfg.routed_experts,
                top_k=cfg.active_experts,
                router="top_k",
                activation="swiglu",
                dropout=cfg.dropout,
                impl=cfg.impl,
            )
        )
        self.ds = cfg
        self.register_buffer("expert_bias", torch.zeros(cfg.routed_experts))  # V3's b

    def route(self, logits: torch.Tensor) -> Routing:
        """(T, E) fp32 logits of the real tokens -> Routing (with the current bias for V3)."""
        ds = self.ds
        if ds.router == "softmax":
            return softmax_top_k(logits, ds.active_experts)
        return sigmoid_bias_top_k(
            logits,
            self.expert_bias,
            ds.active_experts,
            groups=ds.groups,
            topk_groups=ds.topk_groups,
            scaling=ds.routed_scaling,
        )

    def balance(
        self, logits: torch.Tensor, chosen: torch.Tensor, sequence: torch.Tensor, sequences: int
    ) -> torch.Tensor:
        """The unweighted balance loss of the router: expert-level over the call's tokens
        (softmax) or sequence-wise (sigmoid_bias)."""
        if self.ds.router == "softmax":
            return balance_loss(logits, chosen)
        return sequence_balance_loss(logits, chosen, sequence, sequences)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) True = real -> (B, L, D), PartAux(weighted loss, stats)."""
        batch, length, dim = x.shape
        flat = x.reshape(batch * length, dim)  # (B L, D)
        with phase(ROUTER):
            real = mask.reshape(-1).nonzero().squeeze(1)  # (T,) positions of the real tokens
            tokens = flat.index_select(0, real)  # (T, D)
            logits = self.router(tokens).float()  # (T, E); routing math in fp32
            routing = self.route(logits)
            sequence = real // length  # (T,) the sequence of each real token
            weight = self.ds.balance_weight
            balance = self.balance(logits, routing.chosen, sequence, batch) if weight else None
            if self.training and self.ds.bias_update_speed:
                with torch.no_grad():  # after routing with the old bias (module doc)
                    new = bias_step(self.expert_bias, routing.chosen, self.ds.bias_update_speed)
                    self.expert_bias.copy_(new)
        with phase(DISPATCH):
            dispatch = Dispatch.top_k(
                routing.expert, self.cfg.experts, token_ids=real, num_tokens=batch * length
            )
            rows = permute(flat, dispatch)  # (A, D)
        impl = self.gemm_kernel(rows.shape[0])
        with phase(EXPERT_GEMM):
            out = self._experts(rows, dispatch, impl)  # (A, D)
        with phase(COMBINE):
            row_gate = routing.gate.reshape(-1)[dispatch.order]  # (A,)
            y = unpermute(out, dispatch, row_gate).to(x.dtype)  # (B L, D), padding rows 0
        sizes = {"tokens": tokens.shape[0], "rows": multiplied_rows(impl, dispatch.counts)}
        experts = self.cfg.experts

        def stats() -> dict[str, torch.Tensor]:
            unweighted = (
                balance
                if balance is not None
                else self.balance(logits, routing.chosen, sequence, batch)
            )
            return load_stats(routing, experts, unweighted)

        loss = weight * balance if balance is not None else None
        aux = PartAux(loss=loss, stats=LazyStats(STAT_KEYS, stats), sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux


def deepseek_ffn(cfg: DeepSeekFFNConfig) -> nn.Module:
    """The FFN part: shared + routed experts (a `CompositePart`), or the routed experts alone
    when cfg.shared_experts is 0."""
    routed = RoutedExperts(cfg)
    if cfg.shared_experts == 0:
        return routed
    shared = SwiGLUFFN(cfg.dim, cfg.shared_experts * cfg.expert_width, cfg.dropout)
    return CompositePart({"shared": shared, "routed": routed})
