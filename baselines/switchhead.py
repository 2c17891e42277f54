"""SwitchHead (Csordás et al. 2024, arXiv 2312.07987): the shared encoder with SwitchHead
attention as the token mixer (models/layers/switchhead.py: sigmoid-gated value and output
experts per head, dense queries and keys) and the dense FFN.

Sizes (the UoE release has no SwitchHead): the encoder's `model.heads` attention matrices of
width dim / heads, as in the dense encoder (2 of 32 at the LRA shape: already the paper's "few
heads"), each with `model.experts_per_head` = 4 value and output experts of which
`model.experts_active` = 2 are active per token. A token's active width is thus the dense
encoder's (H x Dh = dim); its value and output projections cost k = 2 times the dense ones
(every active expert is a full head-width projection, the paper's layout). No balancing loss,
as the paper trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines.moa import head_dim
from models.config import ModelConfig, ModelTask, check_field
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.switchhead import SwitchHeadAttention
from models.registry import MODELS


@dataclass(frozen=True)
class SwitchHeadFields:
    """SwitchHead's own fields (`--set model.experts_per_head=8`)."""

    experts_per_head: int = 4
    """Value experts and output experts of each head (E)."""
    experts_active: int = 2
    """Experts each token uses per head and side (top-k of `experts_per_head`)."""

    def __post_init__(self) -> None:
        check_field(
            "experts_per_head", self.experts_per_head, self.experts_per_head >= 1, "an integer >= 1"
        )
        check_field(
            "experts_active",
            self.experts_active,
            1 <= self.experts_active <= self.experts_per_head,
            f"an integer in [1, model.experts_per_head={self.experts_per_head}]",
        )


@MODELS.register(
    "switchhead",
    "SwitchHead: attention with sigmoid-gated value/output experts per head + dense FFN",
    fields=SwitchHeadFields,
)
def build_switchhead(
    cfg: ModelConfig, task: ModelTask, own: SwitchHeadFields = SwitchHeadFields()
) -> SequenceClassifier:
    width = head_dim(cfg)
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: SwitchHeadAttention(
            cfg.dim,
            cfg.heads,
            width,
            own.experts_per_head,
            own.experts_active,
            cfg.attn_dropout,
            causal=task.causal,
        ),
        make_ffn=lambda _layer: DenseFFN(cfg.dim, cfg.ffn_dim, cfg.dropout),
    )
