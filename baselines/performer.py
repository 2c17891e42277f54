"""Performer (Choromanski et al. 2021): the shared encoder with Performer attention as the mixer
(models/layers/performer.py) and the dense FFN.

`performer`: FAVOR+ positive orthogonal random features approximating softmax attention,
`model.random_features` (the Performers' own field) features per head, one projection shared by
the heads of a layer (as in the paper's code). `performer_relu`: the "generalized" kernel
relu(W x) that the LRA code uses by default. A causal task gets unidirectional FAVOR+ (prefix
sums, models/layers/performer.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.config import ModelConfig, ModelTask, check_field
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.performer import Kernel, PerformerAttention
from models.registry import MODELS


@dataclass(frozen=True)
class PerformerFields:
    """The Performers' own fields (`--set model.random_features=128`)."""

    random_features: int = 256
    """Random features per head (m): the rows of the feature projection."""

    def __post_init__(self) -> None:
        check_field(
            "random_features", self.random_features, self.random_features >= 1, "an integer >= 1"
        )


def _build(
    cfg: ModelConfig, task: ModelTask, own: PerformerFields, kernel: Kernel
) -> SequenceClassifier:
    # The feature seed is drawn at construction, like the weights, so each run seed gets its own
    # features; later redraws use only the mixer's own (seed, draw) generators.
    base_seed = int(torch.randint(0, 2**31 - 1, ()))
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda layer: PerformerAttention(
            cfg.dim,
            cfg.heads,
            own.random_features,
            seed=base_seed + layer,
            kernel=kernel,
            causal=task.causal,
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )


@MODELS.register(
    "performer",
    "Performer: FAVOR+ positive orthogonal random features (softmax) + dense FFN",
    fields=PerformerFields,
)
def build_performer(
    cfg: ModelConfig, task: ModelTask, own: PerformerFields = PerformerFields()
) -> SequenceClassifier:
    return _build(cfg, task, own, "softmax")


@MODELS.register(
    "performer_relu",
    "Performer, ReLU random-feature kernel (LRA default), dense FFN",
    fields=PerformerFields,
)
def build_performer_relu(
    cfg: ModelConfig, task: ModelTask, own: PerformerFields = PerformerFields()
) -> SequenceClassifier:
    return _build(cfg, task, own, "relu")
