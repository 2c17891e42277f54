"""A sequence classifier on the shared encoder, for one input or two (dual encoder), and the
helper every model file uses to build one: `build_classifier` returns the model's causal form,
a `LanguageModel` (models/layers/language_model.py), when the task is causal."""

from __future__ import annotations

import torch
from torch import nn

from models.config import POOLS, ModelConfig, ModelTask
from models.layers.encoder import Encoder, PartFactory
from models.layers.heads import ClassificationHead, dual_features, pool
from models.layers.language_model import LanguageModel, LanguageModelHead
from models.layers.output import ModelOutput

__all__ = ["ModelOutput", "SequenceClassifier", "build_classifier", "parameter_counts"]


class SequenceClassifier(nn.Module):
    """Encode each input with the same encoder, pool (`pooling`: "mean" | "sum_over_L"), classify.

    With two inputs the head reads [u, v, u*v, u-v] and the routing statistics of both passes
    are returned (first input's layers, then the second's).
    """

    def __init__(
        self,
        encoder: Encoder,
        head: ClassificationHead,
        num_inputs: int,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if num_inputs not in (1, 2):
            raise ValueError(f"num_inputs must be 1 or 2, got {num_inputs}")
        if pooling not in POOLS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLS)}")
        self.encoder = encoder
        self.head = head
        self.num_inputs = num_inputs
        self.pooling = pooling

    def forward(
        self, inputs: tuple[torch.Tensor, ...], lengths: tuple[torch.Tensor, ...]
    ) -> ModelOutput:
        """inputs[i] (B, L) int64, lengths[i] (B,) -> ModelOutput."""
        if len(inputs) != self.num_inputs:
            raise ValueError(f"expected {self.num_inputs} inputs, got {len(inputs)}")
        encoded = [self.encoder(tokens, n) for tokens, n in zip(inputs, lengths, strict=True)]
        pooled = [pool(self.pooling, e.hidden, e.mask) for e in encoded]  # each (B, D)
        features = pooled[0] if self.num_inputs == 1 else dual_features(*pooled)
        aux_loss = sum((e.aux_loss for e in encoded[1:]), start=encoded[0].aux_loss)
        stats = tuple(s for e in encoded for s in e.layer_stats)
        return ModelOutput(self.head(features), aux_loss, stats)


def build_classifier(
    cfg: ModelConfig,
    task: ModelTask,
    *,
    make_mixer: PartFactory,
    make_ffn: PartFactory,
) -> SequenceClassifier | LanguageModel:
    """The shared classifier with this model's mixer and FFN in every block, on the backbone
    the config names (`cfg.norm`, `cfg.rope`, `cfg.pool`); for a causal task the language
    model on the same encoder (the factories must then make causal parts: a model file passes
    `causal=task.causal` to its mixers, and one without a causal form raises `NoCausalForm`
    before calling this)."""
    encoder = Encoder(
        vocab_size=task.vocab_size,
        max_len=task.max_len,
        dim=cfg.dim,
        depth=cfg.depth,
        dropout=cfg.dropout,
        make_mixer=make_mixer,
        make_ffn=make_ffn,
        norm=cfg.norm,
        rope_heads=cfg.heads if cfg.rope else 0,
    )
    if task.causal:
        return LanguageModel(encoder, LanguageModelHead(cfg.dim, task.num_classes))
    in_dim = cfg.dim * (4 if task.num_inputs == 2 else 1)
    head = ClassificationHead(in_dim, cfg.ffn_dim, task.num_classes)
    return SequenceClassifier(encoder, head, task.num_inputs, cfg.pool)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(total, active) parameters. Active excludes what a module reports through an
    `inactive_parameter_count()` method (experts a token does not use); dense: active == total."""
    total = sum(p.numel() for p in model.parameters())
    inactive = sum(
        int(m.inactive_parameter_count())
        for m in model.modules()
        if hasattr(m, "inactive_parameter_count")
    )
    return total, total - inactive
