"""Skywork-MoE (Wei et al., arXiv 2406.06563): full attention + a top-k SwiGLU MoE FFN with
gating-logit normalisation and adaptive per-layer auxiliary-loss coefficients (models.moe.skywork).

Sizes follow the UoE release's LRA Skywork baseline (its `SkyDecoderLayer`): cfg.experts SwiGLU
experts of width ffn_dim // experts (4 of width 32 at the paper scale, ffn_dim 128), top-k =
cfg.top_k (2, the release's MOE_TOP_K). The attention is the shared full attention with
cfg.heads heads (2 in that config). Capacity: cfg.capacity_factor * k * n / E slots per expert and
sequence. The adaptive coefficient starts at cfg.balance_loss_weight.

Where the release differs (kept out on purpose, since the rival is the report's method): its
`SkyworkMoeConfig` defaults leave the logit normalisation OFF (`moe_use_logits_norm=False`),
use a two-layer tanh gate and scale the logits by k, and route dropless with no auxiliary loss.

Constants: lambda = 1 (`moe_gate_norm_std` 1.0, as in Skywork-MoE's released config); beta 0.99
and xi 0.2 for the coefficient update are our reading of the report's section 4.2, which could
not be re-read while writing this (only its abstract is stored here): they are fields, so
`--set model.aux_smoothing=... model.aux_sensitivity=...` changes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_field
from models.errors import InputError
from models.layers.classifier import SequenceClassifier
from models.moe.classifier import build_routed_classifier
from models.moe.skywork import SkyworkConfig, SkyworkMoEFFN
from models.registry import MODELS


@dataclass(frozen=True)
class SkyworkFields:
    """Skywork-MoE's own fields (`--set model.gate_scale=2`)."""

    gate_scale: float = 1.0
    """lambda: the normalised gate logits' scale (their standard deviation)."""
    aux_smoothing: float = 0.99
    """beta: how much of its last value the auxiliary-loss coefficient keeps per step."""
    aux_sensitivity: float = 0.2
    """xi: the coefficient's target per unit of token drop rate."""

    def __post_init__(self) -> None:
        scale = self.gate_scale
        check_field("gate_scale", scale, math.isfinite(scale) and scale > 0, "a finite number > 0")
        beta = self.aux_smoothing
        check_field("aux_smoothing", beta, 0 <= beta < 1, "a number in [0, 1)")
        xi = self.aux_sensitivity
        check_field("aux_sensitivity", xi, math.isfinite(xi) and xi >= 0, "a finite number >= 0")

    def check_shape(self, cfg: ModelConfig) -> None:
        """At least one hidden unit per expert, top_k within the experts (models.registry)."""
        if cfg.ffn_dim // cfg.experts < 1:
            raise InputError(
                f"model.ffn_dim={cfg.ffn_dim} gives model.experts={cfg.experts} experts no hidden "
                "unit (each is ffn_dim // experts wide); raise model.ffn_dim or lower model.experts"
            )
        if not 1 <= cfg.top_k <= cfg.experts:
            raise InputError(f"model.top_k={cfg.top_k} must be in [1, model.experts={cfg.experts}]")


def skywork_config(cfg: ModelConfig, own: SkyworkFields = SkyworkFields()) -> SkyworkConfig:
    own.check_shape(cfg)
    return SkyworkConfig(
        dim=cfg.dim,
        hidden=cfg.ffn_dim // cfg.experts,
        experts=cfg.experts,
        top_k=cfg.top_k,
        capacity_factor=cfg.capacity_factor,
        gate_scale=own.gate_scale,
        alpha_init=cfg.balance_loss_weight,
        aux_smoothing=own.aux_smoothing,
        aux_sensitivity=own.aux_sensitivity,
        dropout=cfg.dropout,
    )


@MODELS.register(
    "skywork_moe",
    "Skywork-MoE: full attention + top-k MoE with normalised gate logits and adaptive aux loss",
    fields=SkyworkFields,
)
def build_skywork_moe(
    cfg: ModelConfig, task: ModelTask, own: SkyworkFields = SkyworkFields()
) -> SequenceClassifier:
    ffn = skywork_config(cfg, own)
    return build_routed_classifier(cfg, task, lambda _layer: SkyworkMoEFFN(ffn))
