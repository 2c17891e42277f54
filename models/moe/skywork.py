"""Skywork-MoE's FFN (Wei et al., arXiv 2406.06563, section 4): gating-logit normalisation and
adaptive per-layer auxiliary-loss coefficients, on top-k SwiGLU experts with a capacity.

Gate (report, eq. of section 4.1; the authors' Hugging Face `SkyworkSparseMoeBlock` with
`moe_use_logits_norm`): z = W x (no bias), z~ = lambda (z - mean(z)) / std(z) over the expert
axis, p = softmax(z~), the k largest p kept and renormalised to sum 1. `std` is the sample
standard deviation (n - 1), as `router_logits.std(dim=1)` in that code; it is clamped at 1e-6
so a token whose logits are all equal (z = 0) gets uniform probabilities, not NaN.

Capacity: expert e keeps at most ceil(capacity_factor * k * n / E) assignments of a sequence of
n real tokens, first come first served in position order (token by token, all of a token's
choices at once); a dropped assignment contributes 0 (the residual carries the token). Since a
token's slot depends only on earlier tokens, the rule is causal as it stands (the budget reads the
sequence's length, never a later token's content).

Auxiliary loss: alpha_l * E * sum_e f_e P_e (`models.moe.routing.balance_loss` on z~: f over all
k choices before dropping, P the mean of p). The coefficient of each layer adapts to its drop
rate d_l (dropped / chosen assignments of the call): after every training-mode call,
alpha_l <- beta * alpha_l + (1 - beta) * xi * d_l, the call itself using the alpha it found.
alpha starts at `alpha_init`; it is a buffer, so a checkpoint keeps it. A training step is one
call per layer, except for a dual-encoder task, whose step calls each layer twice (two updates).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.moe.experts import MoEConfig
from models.moe.routing import balance_loss
from models.moe.sequence_routing import (
    Assignments,
    SequenceRoutedFFN,
    keep_within_capacity,
    sequence_capacity,
)

STD_FLOOR = 1e-6
EXTRA_KEYS = ("aux_coefficient",)


@dataclass(frozen=True)
class SkyworkConfig:
    """dim, expert hidden width, experts, top_k, capacity_factor; gate_scale: lambda;
    alpha_init, aux_smoothing (beta), aux_sensitivity (xi): the adaptive coefficient."""

    dim: int
    hidden: int
    experts: int
    top_k: int
    capacity_factor: float
    gate_scale: float
    alpha_init: float
    aux_smoothing: float
    aux_sensitivity: float
    dropout: float = 0.0
    impl: str | None = None  # force a grouped_mm implementation (tests); None = dispatcher

    def moe(self) -> MoEConfig:
        """The experts' shape: SwiGLU experts without biases (Skywork's Mixtral-style experts)."""
        return MoEConfig(
            dim=self.dim,
            hidden=self.hidden,
            experts=self.experts,
            top_k=self.top_k,
            router="top_k",
            activation="swiglu",
            capacity_factor=self.capacity_factor,
            dropout=self.dropout,
            impl=self.impl,
        )


def normalized_logits(logits: torch.Tensor, scale: float) -> torch.Tensor:
    """(T, E) -> lambda (z - mean z) / std z over the expert axis (module doc)."""
    centred = logits - logits.mean(-1, keepdim=True)  # (T, E)
    return scale * centred / logits.std(-1, keepdim=True).clamp_min(STD_FLOOR)


class SkyworkMoEFFN(SequenceRoutedFFN):
    def __init__(self, cfg: SkyworkConfig) -> None:
        super().__init__(cfg.moe())
        self.skywork = cfg
        # alpha_l: the layer's current auxiliary-loss coefficient (module doc).
        self.register_buffer("aux_coefficient", torch.tensor(float(cfg.alpha_init)))

    def route_tokens(
        self, logits: torch.Tensor, sequence: torch.Tensor, lengths: torch.Tensor
    ) -> Assignments:
        cfg = self.skywork
        tokens, experts = logits.shape
        normed = normalized_logits(logits, cfg.gate_scale)  # (T, E)
        probs = torch.softmax(normed, dim=-1)  # (T, E)
        top, chosen = probs.topk(cfg.top_k, dim=-1)  # (T, k) each
        gate = top / top.sum(-1, keepdim=True)  # (T, k) renormalised
        token = torch.arange(tokens, device=logits.device).repeat_interleave(cfg.top_k)  # (A,)
        expert = chosen.reshape(-1)  # (A,) token-major
        seq = sequence.index_select(0, token)  # (A,)
        slots = sequence_capacity(lengths, experts, cfg.capacity_factor, cfg.top_k)  # (B,)
        kept = keep_within_capacity(
            seq * experts + expert,
            slots.index_select(0, seq),
            torch.arange(expert.numel(), device=logits.device),  # position order
            lengths.numel() * experts,
        )
        balance = balance_loss(normed, chosen)
        alpha = self.aux_coefficient.detach().clone()  # the value this call uses
        dropped = (~kept).sum() / max(kept.numel(), 1)  # d_l of this call
        if self.training:
            with torch.no_grad():
                beta, xi = cfg.aux_smoothing, cfg.aux_sensitivity
                self.aux_coefficient.copy_(beta * alpha + (1.0 - beta) * xi * dropped)
        return Assignments(
            token=token,
            expert=expert,
            gate=gate.reshape(-1),
            kept=kept,
            loss=alpha * balance,
            balance=balance,
            extra_stats=lambda: {"aux_coefficient": alpha},
            extra_keys=EXTRA_KEYS,
        )
