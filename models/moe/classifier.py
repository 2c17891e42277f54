"""The shared backbone with a full-attention mixer and an MoE FFN in every block: what the MoE
baselines (Switch, Mixtral) differ in is only their `MoEConfig`."""

from __future__ import annotations

from bench.config import ModelConfig
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.moe.experts import MoEConfig, MoEFFN
from suites.spec import TaskSpec


def build_moe_classifier(
    cfg: ModelConfig, task: TaskSpec, max_len: int, ffn: MoEConfig
) -> SequenceClassifier:
    """Full attention (as in `full_attention`) + `MoEFFN(ffn)` in every block."""
    return build_classifier(
        cfg,
        task,
        max_len,
        make_mixer=lambda _layer: MultiHeadAttention(cfg.dim, cfg.heads, cfg.attn_dropout),
        make_ffn=lambda _layer: MoEFFN(ffn),
    )
