"""UoE, the project's own model (models/uoe), in five registrations over two behaviours.

`uoe` is the corrected model (gate-weighted union, balance loss, padding never routed); `uoe_paper`
reproduces the released code's behaviour so the benchmark shows what the corrections change (on
the released backbone it is the released model); `uoe_patch` and `uoe_sample` are `uoe` with the
paper's two other routing paradigms: patch-wise data selection and per-sample expert selection;
`uoe_causal` is `uoe` with token-choice routing that drops nothing, UoE's causal (language-model)
form (the others have none, and `uoe_paper` keeps the released segment-wide routing, which sees
later tokens). All five share their own fields (`UoEFields`: attn_top_k, patch_size, routing_level,
capacity_rule). `models/uoe/model.py` documents them all.
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier
from models.registry import MODELS
from models.uoe.model import (
    DEFAULT_FIELDS,
    UoEFields,
    build_uoe,
    causal_fields,
    patch_fields,
    sample_fields,
)


@MODELS.register(
    "uoe",
    "UoE corrected: gate-weighted SMHA + UoME, balance loss, padding masked",
    fields=UoEFields,
)
def build_uoe_corrected(
    cfg: ModelConfig, task: ModelTask, own: UoEFields = DEFAULT_FIELDS
) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected", own, name="uoe")


@MODELS.register(
    "uoe_paper",
    "UoE as released: unweighted union, untrained router, L/2 MLP, per-expert biases",
    fields=UoEFields,
)
def build_uoe_paper(
    cfg: ModelConfig, task: ModelTask, own: UoEFields = DEFAULT_FIELDS
) -> SequenceClassifier:
    return build_uoe(cfg, task, "paper", own, name="uoe_paper")


@MODELS.register(
    "uoe_patch",
    "UoE corrected, patch-wise data selection: experts pick patches of 8 tokens",
    fields=UoEFields,
)
def build_uoe_patch(
    cfg: ModelConfig, task: ModelTask, own: UoEFields = DEFAULT_FIELDS
) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected", patch_fields(own), name="uoe_patch")


@MODELS.register(
    "uoe_sample",
    "UoE corrected, per-sample expert selection: each chosen expert takes all tokens",
    fields=UoEFields,
)
def build_uoe_sample(
    cfg: ModelConfig, task: ModelTask, own: UoEFields = DEFAULT_FIELDS
) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected", sample_fields(own), name="uoe_sample")


@MODELS.register(
    "uoe_causal",
    "UoE corrected, causal: token-choice top-k, nothing dropped, heads chosen per query token",
    fields=UoEFields,
)
def build_uoe_causal(
    cfg: ModelConfig, task: ModelTask, own: UoEFields = DEFAULT_FIELDS
) -> SequenceClassifier:
    return build_uoe(cfg, task, "corrected", causal_fields(own), name="uoe_causal")
