"""The shared backbone with a full-attention mixer and an MoE FFN in every block: what the MoE
baselines (Switch, Mixtral) differ in is only their `MoEConfig`."""

from __future__ import annotations

import dataclasses

from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.moe.experts import MoEConfig, MoEFFN


def build_moe_classifier(cfg: ModelConfig, task: ModelTask, ffn: MoEConfig) -> SequenceClassifier:
    """Full attention (as in `full_attention`) + `MoEFFN(ffn)` in every block; for a causal
    task both in their causal form (causal attention mask; `MoEConfig.causal`)."""
    ffn = dataclasses.replace(ffn, causal=task.causal)
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: MultiHeadAttention(
            cfg.dim, cfg.heads, cfg.attn_dropout, causal=task.causal
        ),
        make_ffn=lambda _layer: MoEFFN(ffn),
    )
