"""Mixtral-style MoE (Jiang et al., 2401.04088): full attention + a dropless top-k SwiGLU MoE FFN.

Router: the cfg.top_k largest logits, softmax over those k (weights sum to 1 per token), no
capacity limit. Experts are SwiGLU, W2 (SiLU(x W1) * x W3), without biases, of hidden
h = round(2 * ffn_dim / (3 * top_k)), so a token's active expert weights 3 * d * h * k match
the dense FFN's 2 * d * ffn_dim (to rounding). Optional balance loss (cfg.balance_loss_weight,
0 turns it off), normalised to 1 at uniform routing (see models.moe.routing).
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier
from models.moe.classifier import build_moe_classifier
from models.moe.experts import MoEConfig
from models.registry import MODELS


def swiglu_hidden(ffn_dim: int, top_k: int) -> int:
    """Expert hidden width matching the dense FFN's active weights: 3 d h k = 2 d ffn_dim."""
    hidden = round(2 * ffn_dim / (3 * top_k))
    if hidden < 1:
        raise ValueError(f"ffn_dim={ffn_dim} is too small for top_k={top_k} SwiGLU experts")
    return hidden


def mixtral_ffn_config(cfg: ModelConfig) -> MoEConfig:
    return MoEConfig(
        dim=cfg.dim,
        hidden=swiglu_hidden(cfg.ffn_dim, cfg.top_k),
        experts=cfg.experts,
        top_k=cfg.top_k,
        router="top_k",
        activation="swiglu",
        balance_loss_weight=cfg.balance_loss_weight,
        dropout=cfg.dropout,
    )


@MODELS.register("mixtral", "Mixtral-style: full attention + dropless top-k SwiGLU MoE FFN")
def build_mixtral(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_moe_classifier(cfg, task, mixtral_ffn_config(cfg))
