"""What a model is built from: its shape (`ModelConfig`) and what it needs to know of a task
(`ModelTask`). Both are frozen; a suite builds the `ModelTask` from its own task spec, so the
library never sees a suite."""

from __future__ import annotations

from dataclasses import dataclass

NORMS = ("layer", "rms")
POOLS = ("mean", "sum_over_L")
ROUTING_LEVELS = ("token", "sample")
CAPACITY_RULES = ("default", "factor", "half", "max_load")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the shared encoder: the same for every model of a comparison."""

    dim: int = 64
    depth: int = 2
    heads: int = 2
    ffn_dim: int = 128
    dropout: float = 0.0
    attn_dropout: float = 0.0
    # Mixture-of-experts parts (UoE, Switch, Mixtral); dense models ignore these.
    experts: int = 4  # FFN experts (UoE: slices of the dense FFN, each ffn_dim / experts wide)
    top_k: int = 2  # FFN experts per token (Switch is top-1 by definition)
    attn_top_k: int = 1  # UoE: head-experts per token
    capacity_factor: float = 1.25  # tokens an expert may keep = factor x fair share
    balance_loss_weight: float = 0.01  # load-balancing auxiliary loss
    z_loss_weight: float = 0.001  # router z-loss (Switch)
    # UoE data selection: tokens per patch; 0 = the model's own (1, token level, for uoe,
    # uoe_paper and uoe_sample; UOE_PATCH_TOKENS for uoe_patch).
    patch_size: int = 0
    routing_level: str = "token"  # UoE expert selection: per "token" or per "sample"
    # UoE capacity rule of both parts, by name (models/uoe/model.py): "default" (each model's
    # own), "factor" (capacity_factor x fair share), "half" (L/2), "max_load" (the busiest expert).
    capacity_rule: str = "default"
    # Backbone options, honoured by every model (README, "The released backbone"):
    norm: str = "layer"  # the blocks' pre-norms: "layer" (LayerNorm) | "rms" (RMSNorm, eps 1e-6)
    rope: bool = False  # the released rotary step on each mixer's input (models/layers/rotary.py)
    pool: str = "mean"  # "mean" over real tokens | "sum_over_L": their sum / the padded length
    # Efficient-attention mixers; other models ignore these.
    proj_len: int = 256  # Linformer: keys/values projected along the sequence to this length
    random_features: int = 256  # Performer: FAVOR+ random features per head

    def __post_init__(self) -> None:
        choices = {
            "norm": NORMS,
            "pool": POOLS,
            "routing_level": ROUTING_LEVELS,
            "capacity_rule": CAPACITY_RULES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"model.{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}; "
                    f"set e.g. --set model.{name}={allowed[0]}"
                )
        if self.patch_size < 0:
            raise ValueError(
                f"model.patch_size must be >= 0 (0 = the model's own), got {self.patch_size}"
            )


@dataclass(frozen=True)
class ModelTask:
    """The model-facing side of a task: the classes to predict, the token vocabulary (the
    padding id 0 included), one input or two (a dual encoder), and the padded input length."""

    num_classes: int
    vocab_size: int
    num_inputs: int
    max_len: int

    def __post_init__(self) -> None:
        if self.num_inputs not in (1, 2):
            raise ValueError(f"num_inputs must be 1 or 2, got {self.num_inputs}")
        if self.num_classes < 2 or self.vocab_size < 2 or self.max_len < 1:
            raise ValueError(
                f"a task needs >= 2 classes, a vocabulary of >= 2 ids and max_len >= 1; got {self}"
            )
