"""MoA, Mixture of Attention heads (Zhang et al. 2022, arXiv 2210.05144): the shared encoder with
MoA as the token mixer (models/layers/moa.py) and the dense FFN (the paper's MoA replaces the
attention only).

Sizes (the UoE release has no LRA config for MoA): each head-expert is as wide as one of the
encoder's heads (Dh = dim / heads) and a token takes `model.heads_per_token` = 2 of
`model.head_experts` = 4 of them, so at the LRA shape (2 heads of 32) a token's active attention
is the dense encoder's 2 heads of 32 (the expert query/output projections hold twice the dense
ones' weights). Router losses as the paper trains them: the load-balancing loss weighted by
`model.balance_loss_weight` and the router z-loss by `model.z_loss_weight` (default 0.001, the
MoA code's `zloss`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_field
from models.errors import InputError
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.moa import MixtureOfAttentionHeads
from models.registry import MODELS


@dataclass(frozen=True)
class MoAFields:
    """MoA's own fields (`--set model.head_experts=8`)."""

    head_experts: int = 4
    """Attention-head experts (E), each with its own query and output projection."""
    heads_per_token: int = 2
    """Head-experts each token is routed to (top-k of `head_experts`)."""
    z_loss_weight: float = 0.001
    """Weight of the router z-loss (the mean squared log-sum-exp of the router logits)."""

    def __post_init__(self) -> None:
        check_field("head_experts", self.head_experts, self.head_experts >= 1, "an integer >= 1")
        check_field(
            "heads_per_token",
            self.heads_per_token,
            1 <= self.heads_per_token <= self.head_experts,
            f"an integer in [1, model.head_experts={self.head_experts}]",
        )
        w = self.z_loss_weight
        check_field("z_loss_weight", w, math.isfinite(w) and w >= 0, "a finite number >= 0")


def head_dim(cfg: ModelConfig) -> int:
    """One encoder head's width, dim / heads; refused when heads do not divide dim."""
    if cfg.dim % cfg.heads:
        raise InputError(
            f"model.dim={cfg.dim} is not divisible by model.heads={cfg.heads}; "
            "set --set model.heads to a divisor of model.dim"
        )
    return cfg.dim // cfg.heads


@MODELS.register(
    "moa",
    "MoA: per-token top-k of attention-head experts (own Q/O, shared K/V) + dense FFN",
    fields=MoAFields,
)
def build_moa(
    cfg: ModelConfig, task: ModelTask, own: MoAFields = MoAFields()
) -> SequenceClassifier:
    width = head_dim(cfg)
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: MixtureOfAttentionHeads(
            cfg.dim,
            width,
            own.head_experts,
            own.heads_per_token,
            cfg.attn_dropout,
            balance_loss_weight=cfg.balance_loss_weight,
            z_loss_weight=own.z_loss_weight,
            causal=task.causal,
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
