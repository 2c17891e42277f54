"""Linformer (Wang et al. 2020): the shared encoder with Linformer attention as the mixer
(models/layers/linformer.py) and the dense FFN.

Keys and values are projected along the sequence to k = cfg.proj_len slots (default 256; k =
max_len when it is no shorter), one projection per layer shared by the heads (the paper's
headwise sharing).
"""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.linformer import LinformerAttention
from models.registry import MODELS


@MODELS.register(
    "linformer", "Linformer: keys/values projected along the sequence to model.proj_len + dense FFN"
)
def build_linformer(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: LinformerAttention(
            cfg.dim, cfg.heads, task.max_len, cfg.proj_len, attn_dropout=cfg.attn_dropout
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
