"""UoE, the project's own model (models/uoe), in its two registered variants.

`uoe` is the corrected model (gate-weighted union, balance loss, padding never routed); `uoe_paper`
reproduces the released code's behaviour so the benchmark shows what the corrections change.
`models/uoe/model.py` documents both.
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier
from models.registry import MODELS
from models.uoe.model import build_uoe


@MODELS.register("uoe", "UoE corrected: gate-weighted SMHA + UoME, balance loss, padding masked")
def build_uoe_corrected(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected")


@MODELS.register("uoe_paper", "UoE as released: unweighted union, untrained router, L/2 MLP")
def build_uoe_paper(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(cfg, task, "paper")
