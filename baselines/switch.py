"""Switch Transformer (Fedus et al., 2101.03961): full attention + a top-1 MoE FFN.

Each of cfg.experts experts is a dense FFN of hidden cfg.ffn_dim, so a token uses exactly the
dense model's FFN parameters. Router: softmax, top-1, output scaled by the (un-renormalised)
gate probability; an expert keeps ceil(capacity_factor * T / E) tokens in position order and
drops the rest (they pass through the residual), T counted per sequence by default
(`model.capacity_group=sequence`: T = the sequence's real tokens, as Hugging Face's Switch caps
each sequence separately, so a sequence's logits do not depend on its batch-mates) or over the
whole batch's real tokens in batch-row then position order (`model.capacity_group=batch`, the
rule this model had before; a sequence's routing then depends on the others); balance loss
E * sum_i f_i P_i weighted by cfg.balance_loss_weight plus the router z-loss weighted by
`model.z_loss_weight` (Switch's own field).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_choice, check_field
from models.layers.classifier import SequenceClassifier
from models.moe.classifier import build_moe_classifier
from models.moe.experts import CAPACITY_GROUPS, MoEConfig
from models.registry import MODELS


@dataclass(frozen=True)
class SwitchFields:
    """Switch's own fields (`--set model.z_loss_weight=0 model.capacity_group=batch`)."""

    z_loss_weight: float = 0.001
    """Weight of the router z-loss (the mean squared log-sum-exp of the router logits)."""
    capacity_group: str = "sequence"
    """Whose tokens an expert's capacity counts: each "sequence"'s own (a sequence's logits do not
    depend on its batch-mates) or the whole "batch"'s (they do)."""

    def __post_init__(self) -> None:
        w = self.z_loss_weight
        check_field("z_loss_weight", w, math.isfinite(w) and w >= 0, "a finite number >= 0")
        check_choice("capacity_group", self.capacity_group, CAPACITY_GROUPS)


def switch_ffn_config(cfg: ModelConfig, own: SwitchFields = SwitchFields()) -> MoEConfig:
    return MoEConfig(
        dim=cfg.dim,
        hidden=cfg.ffn_dim,
        experts=cfg.experts,
        top_k=1,
        router="switch",
        activation="gelu",
        capacity_factor=cfg.capacity_factor,
        capacity_group=own.capacity_group,
        balance_loss_weight=cfg.balance_loss_weight,
        z_loss_weight=own.z_loss_weight,
        dropout=cfg.dropout,
    )


@MODELS.register(
    "switch",
    "Switch Transformer: full attention + top-1 MoE FFN with capacity",
    fields=SwitchFields,
)
def build_switch(
    cfg: ModelConfig, task: ModelTask, own: SwitchFields = SwitchFields()
) -> SequenceClassifier:
    return build_moe_classifier(cfg, task, switch_ffn_config(cfg, own))
