"""DeepSeekMoE and DeepSeek-V3 on the shared encoder: their own fields and builders.

Default sizes follow the UoE release's LRA DeepSeek baselines (`long_range_modeling/model/
baseline/DeepSeekV3.py`, reference/uoe.md §3.4): 7 routed + 1 shared experts, 3 routed experts
active per token, expert width 16 (the release's moe_inter_dim at D 64: the dense FFN's 128 cut
into 8 fine-grained experts), so a token's active expert width is 4 x 16 = 64 SwiGLU columns.
MLA (deepseek_v3) takes its widths from the shared shape as the release does at D 64, 2 heads:
q and kv ranks D / 2 (32), per head a no-position width and a rotary width of half the head
width each (16 + 16) and a value width of the head width (32); the LM configs of the release
use the same ratios.

The release's own DeepSeek classes deviate from the papers (its "V3" router is a softmax with a
bias parameter that is never updated, no balance loss is added, "DeepSeek-MoE" is plain MHA
with the same router): these registrations follow the papers instead (models/deepseek/routing.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.config import ModelConfig, ModelTask, check_field
from models.deepseek.mla import MultiHeadLatentAttention
from models.deepseek.moe import DeepSeekFFNConfig, deepseek_ffn
from models.errors import InputError
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier


def _count(name: str, value: int, low: int) -> None:
    check_field(name, value, isinstance(value, int) and value >= low, f"an integer >= {low}")


def _weight(name: str, value: float) -> None:
    check_field(name, value, math.isfinite(value) and value >= 0, "a finite number >= 0")


@dataclass(frozen=True)
class DeepSeekExperts:
    """The expert shape both DeepSeek models share (`--set model.routed_experts=15`)."""

    routed_experts: int = 7
    """Fine-grained routed experts (N_r)."""
    shared_experts: int = 1
    """Always-active shared experts (K_s), run as one SwiGLU FFN of K_s x expert_width."""
    active_experts: int = 3
    """Routed experts per token (K_r = mK - K_s in DeepSeekMoE's notation)."""
    expert_width: int = 16
    """Hidden width of each routed and shared SwiGLU expert."""

    def __post_init__(self) -> None:
        _count("routed_experts", self.routed_experts, 1)
        _count("shared_experts", self.shared_experts, 0)
        _count("expert_width", self.expert_width, 1)
        check_field(
            "active_experts",
            self.active_experts,
            isinstance(self.active_experts, int)
            and 1 <= self.active_experts <= self.routed_experts,
            f"an integer in 1..model.routed_experts={self.routed_experts}",
        )


@dataclass(frozen=True)
class DeepSeekMoEFields(DeepSeekExperts):
    """deepseek_moe's own fields."""

    expert_balance_weight: float = 0.01
    """alpha1 of the expert-level balance loss (the paper's 0.01 at 2B)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _weight("expert_balance_weight", self.expert_balance_weight)


@dataclass(frozen=True)
class DeepSeekV3Fields(DeepSeekExperts):
    """deepseek_v3's own fields."""

    seq_balance_weight: float = 0.0001
    """alpha of the sequence-wise balance loss (the paper's 0.0001)."""
    bias_update_speed: float = 0.001
    """gamma of the auxiliary-loss-free bias update (the paper's 0.001); 0 freezes the bias."""
    routed_scaling: float = 1.0
    """Factor on the routed experts' gates (`model.py`'s route_scale; 1 in its small configs)."""
    expert_groups: int = 1
    """Groups the routed experts are split into for group-limited routing (1: none)."""
    groups_per_token: int = 1
    """Groups a token may route into (the best by their two best s + b)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _weight("seq_balance_weight", self.seq_balance_weight)
        _weight("bias_update_speed", self.bias_update_speed)
        check_field(
            "routed_scaling",
            self.routed_scaling,
            math.isfinite(self.routed_scaling) and self.routed_scaling > 0,
            "a finite number > 0",
        )
        _count("expert_groups", self.expert_groups, 1)
        groups, size = self.expert_groups, self.routed_experts // self.expert_groups
        if groups > 1 and (self.routed_experts % groups or size < 2):
            raise InputError(
                f"model.expert_groups={groups} must split model.routed_experts="
                f"{self.routed_experts} into equal groups of at least 2 experts (a group is "
                "scored by its two best); set e.g. --set model.expert_groups=1"
            )
        check_field(
            "groups_per_token",
            self.groups_per_token,
            isinstance(self.groups_per_token, int) and 1 <= self.groups_per_token <= groups,
            f"an integer in 1..model.expert_groups={groups}",
        )
        if self.active_experts > self.groups_per_token * size:
            raise InputError(
                f"model.active_experts={self.active_experts} exceeds the experts of the "
                f"{self.groups_per_token} kept group(s) of {size}; raise model.groups_per_token "
                "or lower model.active_experts"
            )

    def check_shape(self, cfg: ModelConfig) -> None:
        """MLA's widths come from the head width D / heads (module doc): it must split into two
        halves, the rotary one of whole pairs."""
        if cfg.dim % cfg.heads or (cfg.dim // cfg.heads) % 4 or cfg.dim < 2:
            raise InputError(
                f"deepseek_v3's MLA needs a head width model.dim / model.heads divisible by 4; "
                f"got dim {cfg.dim}, heads {cfg.heads}: change model.dim or model.heads"
            )


MOE_DEFAULTS = DeepSeekMoEFields()
V3_DEFAULTS = DeepSeekV3Fields()


def ffn_config(cfg: ModelConfig, own: DeepSeekExperts, router: str) -> DeepSeekFFNConfig:
    """The FFN part's config for `router` ("softmax": DeepSeekMoE, "sigmoid_bias": V3)."""
    v3 = isinstance(own, DeepSeekV3Fields)
    return DeepSeekFFNConfig(
        dim=cfg.dim,
        expert_width=own.expert_width,
        routed_experts=own.routed_experts,
        active_experts=own.active_experts,
        shared_experts=own.shared_experts,
        router=router,
        balance_weight=own.seq_balance_weight if v3 else own.expert_balance_weight,
        bias_update_speed=own.bias_update_speed if v3 else 0.0,
        routed_scaling=own.routed_scaling if v3 else 1.0,
        groups=own.expert_groups if v3 else 1,
        topk_groups=own.groups_per_token if v3 else 1,
        dropout=cfg.dropout,
    )


def mla(cfg: ModelConfig, task: ModelTask) -> MultiHeadLatentAttention:
    """MLA at the shared shape (module doc), causal for a causal task."""
    head = cfg.dim // cfg.heads
    return MultiHeadLatentAttention(
        cfg.dim,
        cfg.heads,
        q_rank=cfg.dim // 2,
        kv_rank=cfg.dim // 2,
        nope_dim=head // 2,
        rope_dim=head // 2,
        v_dim=head,
        max_len=task.max_len,
        attn_dropout=cfg.attn_dropout,
        causal=task.causal,
    )


def build_deepseek_moe(
    cfg: ModelConfig, task: ModelTask, own: DeepSeekMoEFields
) -> SequenceClassifier:
    """Full attention + the DeepSeekMoE FFN (softmax router, expert-level balance loss)."""
    ffn = ffn_config(cfg, own, "softmax")
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: MultiHeadAttention(
            cfg.dim, cfg.heads, cfg.attn_dropout, causal=task.causal
        ),
        make_ffn=lambda _layer: deepseek_ffn(ffn),
    )


def build_deepseek_v3(
    cfg: ModelConfig, task: ModelTask, own: DeepSeekV3Fields
) -> SequenceClassifier:
    """MLA + the DeepSeekMoE FFN with V3's sigmoid router and bias balancing."""
    own.check_shape(cfg)
    ffn = ffn_config(cfg, own, "sigmoid_bias")
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: mla(cfg, task),
        make_ffn=lambda _layer: deepseek_ffn(ffn),
    )
