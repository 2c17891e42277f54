"""UoE, the project's own model (models/uoe), in four registrations over two behaviours.

`uoe` is the corrected model (gate-weighted union, balance loss, padding never routed); `uoe_paper`
reproduces the released code's behaviour so the benchmark shows what the corrections change (on
the released backbone it is the released model); `uoe_patch` and `uoe_sample` are `uoe` with the
paper's two other routing paradigms: patch-wise data selection and per-sample expert selection.
`models/uoe/model.py` documents them all.
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier
from models.registry import MODELS
from models.uoe.model import build_uoe, patch_config, sample_config


@MODELS.register("uoe", "UoE corrected: gate-weighted SMHA + UoME, balance loss, padding masked")
def build_uoe_corrected(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected")


@MODELS.register(
    "uoe_paper", "UoE as released: unweighted union, untrained router, L/2 MLP, per-expert biases"
)
def build_uoe_paper(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(cfg, task, "paper")


@MODELS.register(
    "uoe_patch", "UoE corrected, patch-wise data selection: experts pick patches of 8 tokens"
)
def build_uoe_patch(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(patch_config(cfg), task, "corrected")


@MODELS.register(
    "uoe_sample", "UoE corrected, per-sample expert selection: each chosen expert takes all tokens"
)
def build_uoe_sample(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_uoe(sample_config(cfg), task, "corrected")
