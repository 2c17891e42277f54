"""Linformer (Wang et al. 2020): the shared encoder with Linformer attention as the mixer
(models/layers/linformer.py) and the dense FFN.

Keys and values are projected along the sequence to k = `model.proj_len` slots (Linformer's own
field; k = max_len when it is no shorter), one projection per layer shared by the heads (the
paper's headwise sharing). It has no causal (language-model) form: every slot is a weighted sum
over all L positions, so each position sees later tokens; a causal task raises `NoCausalForm`.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_field
from models.errors import NoCausalForm
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.linformer import LinformerAttention
from models.registry import MODELS


@dataclass(frozen=True)
class LinformerFields:
    """Linformer's own fields (`--set model.proj_len=64`)."""

    proj_len: int = 256
    """Slots the keys and values are projected to along the sequence (k); k = max_len when it
    is no shorter."""

    def __post_init__(self) -> None:
        check_field("proj_len", self.proj_len, self.proj_len >= 1, "an integer >= 1")


@MODELS.register(
    "linformer",
    "Linformer: keys/values projected along the sequence to model.proj_len + dense FFN",
    fields=LinformerFields,
)
def build_linformer(
    cfg: ModelConfig, task: ModelTask, own: LinformerFields = LinformerFields()
) -> SequenceClassifier:
    if task.causal:
        raise NoCausalForm(
            "linformer has no causal form: its keys and values are projected along the "
            "sequence (E K, F V over all L positions), so every slot, and every position "
            "attending to it, mixes in later tokens"
        )
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: LinformerAttention(
            cfg.dim, cfg.heads, task.max_len, own.proj_len, attn_dropout=cfg.attn_dropout
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
