"""The dense transformer: full softmax attention + dense FFN, the base of every comparison."""

from __future__ import annotations

from bench.catalog import MODELS
from bench.config import ModelConfig
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from suites.spec import TaskSpec


@MODELS.register("full_attention", "dense transformer: full softmax attention (SDPA) + dense FFN")
def build_full_attention(cfg: ModelConfig, task: TaskSpec, max_len: int) -> SequenceClassifier:
    return build_classifier(
        cfg,
        task,
        max_len,
        make_mixer=lambda _layer: MultiHeadAttention(cfg.dim, cfg.heads, cfg.attn_dropout),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
