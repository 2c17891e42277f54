"""XMoE (Yang et al., arXiv 2403.18926): full attention + an FFN of small experts with threshold
routing, so a token engages as many experts as its router needs (models.moe.xmoe).

Sizes: the UoE release's LRA XMoE baseline is only attention + a dense MLP (its second class
definition shadows the MoE one), so none is taken from it. As in the XMoE authors' runs (dense
FFN 3072 split into experts of 384, capacity factor 8 = the top-8 budget), each of the
cfg.experts FFNs of width ffn_dim is split into `granularity` small experts: E = experts x
granularity experts of width ffn_dim // granularity (16 of width 32 at the paper scale), so the
total expert weights equal Switch's and `granularity` small experts give a token the dense FFN's
active width. Capacity per expert and sequence: max(ceil(capacity_factor * granularity * n / E),
min_capacity), min_capacity 4 as theirs. Threshold 0.9 (theirs); balance-loss weight
cfg.balance_loss_weight (0.01, theirs). A causal task builds the position-order capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_field
from models.errors import InputError
from models.layers.classifier import SequenceClassifier
from models.moe.classifier import build_routed_classifier
from models.moe.xmoe import XMoEConfig, XMoEFFN
from models.registry import MODELS


@dataclass(frozen=True)
class XMoEFields:
    """XMoE's own fields (`--set model.threshold=0.5`)."""

    threshold: float = 0.9
    """A token takes experts by descending probability until their mass reaches this."""
    granularity: int = 4
    """Small experts per dense-width FFN expert (their width is ffn_dim // granularity)."""
    min_capacity: int = 4
    """The fewest slots an expert has in a sequence, whatever its length."""

    def __post_init__(self) -> None:
        t = self.threshold
        check_field("threshold", t, math.isfinite(t) and 0 < t <= 1, "a number in (0, 1]")
        g = self.granularity
        check_field("granularity", g, isinstance(g, int) and g >= 1, "an integer >= 1")
        m = self.min_capacity
        check_field("min_capacity", m, isinstance(m, int) and m >= 0, "an integer >= 0")

    def check_shape(self, cfg: ModelConfig) -> None:
        """At least one hidden unit per small expert (models.registry)."""
        if cfg.ffn_dim // self.granularity < 1:
            raise InputError(
                f"model.granularity={self.granularity} leaves experts of model.ffn_dim="
                f"{cfg.ffn_dim} no hidden unit; lower model.granularity to at most ffn_dim"
            )


def xmoe_config(
    cfg: ModelConfig, own: XMoEFields = XMoEFields(), *, causal: bool = False
) -> XMoEConfig:
    own.check_shape(cfg)
    return XMoEConfig(
        dim=cfg.dim,
        hidden=cfg.ffn_dim // own.granularity,
        experts=cfg.experts * own.granularity,
        budget=own.granularity,
        threshold=own.threshold,
        capacity_factor=cfg.capacity_factor,
        min_capacity=own.min_capacity,
        balance_loss_weight=cfg.balance_loss_weight,
        causal=causal,
        dropout=cfg.dropout,
    )


@MODELS.register(
    "xmoe",
    "XMoE: full attention + small experts with threshold routing (experts per token vary)",
    fields=XMoEFields,
)
def build_xmoe(
    cfg: ModelConfig, task: ModelTask, own: XMoEFields = XMoEFields()
) -> SequenceClassifier:
    ffn = xmoe_config(cfg, own, causal=task.causal)
    return build_routed_classifier(cfg, task, lambda _layer: XMoEFFN(ffn))
