"""What a model is built from: the shape every model of a comparison shares (`ModelConfig`) and
what it needs to know of a task (`ModelTask`). Both are frozen; a suite builds the `ModelTask`
from its own task spec, so the library never sees a suite.

A setting of one model only (Linformer's `proj_len`, UoE's `attn_top_k`) is no field here: the
model declares it in its own fields class, registered with its builder (`models.registry`);
`check_field` and `check_choice` are the range checks such a class runs, worded like the shared
ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.errors import InputError

NORMS = ("layer", "rms")
POOLS = ("mean", "sum_over_L")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the shared encoder: the same for every model of a comparison."""

    dim: int = 64
    depth: int = 2
    heads: int = 2
    ffn_dim: int = 128
    dropout: float = 0.0
    attn_dropout: float = 0.0
    # The mixture-of-experts shape every MoE of a comparison shares (UoE, Switch, Mixtral), so
    # that one `--set model.experts=8` reaches them all; dense models ignore these.
    experts: int = 4  # FFN experts (UoE: slices of the dense FFN, each ffn_dim / experts wide)
    top_k: int = 2  # FFN experts per token (Switch is top-1 by definition)
    capacity_factor: float = 1.25  # tokens an expert may keep = factor x fair share
    balance_loss_weight: float = 0.01  # load-balancing auxiliary loss
    # Backbone options, honoured by every model (README, "The released backbone"):
    norm: str = "layer"  # the blocks' pre-norms: "layer" (LayerNorm) | "rms" (RMSNorm, eps 1e-6)
    rope: bool = False  # the released rotary step on each mixer's input (models/layers/rotary.py)
    pool: str = "mean"  # "mean" over real tokens | "sum_over_L": their sum / the padded length

    def __post_init__(self) -> None:
        check_choice("norm", self.norm, NORMS)
        check_choice("pool", self.pool, POOLS)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Refuse `model.NAME=value` unless it is one of `allowed`, naming them."""
    if value not in allowed:
        raise InputError(
            f"model.{name}={value!r} is not one of {', '.join(allowed)}; "
            f"set e.g. --set model.{name}={allowed[0]}"
        )


def check_field(name: str, value: Any, ok: bool, valid: str) -> None:
    """Refuse `model.NAME=value` unless `ok`, naming the valid range (`valid`, e.g. "an integer
    >= 1") and the `--set` that fixes it."""
    if not ok:
        raise InputError(
            f"model.{name}={value!r} is out of range: it must be {valid} "
            f"(set it with --set model.{name}=VALUE)"
        )


@dataclass(frozen=True)
class ModelTask:
    """The model-facing side of a task: the classes to predict, the token vocabulary (the
    padding id 0 included), one input or two (a dual encoder), and the padded input length.

    causal: False for a sequence classifier (logits (B, num_classes)); True for a next-token
    language model: the builder returns a model whose logits are (B, L, num_classes), the logits
    at position t depending on tokens <= t only, every part built in its causal form. A model
    with no causal form (Linformer projects along the sequence) raises `NoCausalForm` naming why.
    """

    num_classes: int
    vocab_size: int
    num_inputs: int
    max_len: int
    causal: bool = False

    def __post_init__(self) -> None:
        if self.num_inputs not in (1, 2):
            raise ValueError(f"num_inputs must be 1 or 2, got {self.num_inputs}")
        if self.num_classes < 2 or self.vocab_size < 2 or self.max_len < 1:
            raise ValueError(
                f"a task needs >= 2 classes, a vocabulary of >= 2 ids and max_len >= 1; got {self}"
            )
        if self.causal and self.num_inputs != 1:
            raise ValueError(f"a causal (language-model) task has one input, got {self}")
