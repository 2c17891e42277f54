"""Switch Transformer (Fedus et al., 2101.03961): full attention + a top-1 MoE FFN.

Each of cfg.experts experts is a dense FFN of hidden cfg.ffn_dim, so a token uses exactly the
dense model's FFN parameters. Router: softmax, top-1, output scaled by the (un-renormalised)
gate probability; an expert keeps ceil(capacity_factor * T / E) tokens in position order and
drops the rest (they pass through the residual); balance loss E * sum_i f_i P_i weighted by
cfg.balance_loss_weight plus the router z-loss weighted by cfg.z_loss_weight.
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier
from models.moe.classifier import build_moe_classifier
from models.moe.experts import MoEConfig
from models.registry import MODELS


def switch_ffn_config(cfg: ModelConfig) -> MoEConfig:
    return MoEConfig(
        dim=cfg.dim,
        hidden=cfg.ffn_dim,
        experts=cfg.experts,
        top_k=1,
        router="switch",
        activation="gelu",
        capacity_factor=cfg.capacity_factor,
        balance_loss_weight=cfg.balance_loss_weight,
        z_loss_weight=cfg.z_loss_weight,
        dropout=cfg.dropout,
    )


@MODELS.register("switch", "Switch Transformer: full attention + top-1 MoE FFN with capacity")
def build_switch(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_moe_classifier(cfg, task, switch_ffn_config(cfg))
