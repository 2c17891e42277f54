"""The dense transformer: full softmax attention + dense FFN, the base of every comparison."""

from __future__ import annotations

from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.registry import MODELS


@MODELS.register("full_attention", "dense transformer: full softmax attention (SDPA) + dense FFN")
def build_full_attention(cfg: ModelConfig, task: ModelTask) -> SequenceClassifier:
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: MultiHeadAttention(
            cfg.dim, cfg.heads, cfg.attn_dropout, causal=task.causal
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
