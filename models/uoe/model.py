"""The two UoE variants (registered by `baselines/uoe.py`) and the dense -> UoE conversion.

`uoe_paper` reproduces the released code's behaviour (reference/uoe.md §1.3-1.4): unweighted
union of expert outputs, so the routers get no gradient; no balance loss; attention capacity =
the batch's maximum load, MLP capacity fixed at L/2; padding routed and filler tokens processed
as real ones. (One deliberate difference: the output bias is added once per token, as in the
exact decomposition, not once per expert that took the token.)

`uoe` is the corrected model: expert outputs weighted by the gate (k x the top-k renormalised
probability, so a uniform gate gives weight 1 and the union stays on the dense scale), a
load-balancing loss weighted by `balance_loss_weight`, padding and fillers never processed,
capacity per sequence from `capacity_factor` (x the fair share k L / E) in both parts, dropped
tokens counted.

Both use the released LRA layout: attention = `heads` head-experts, top `attn_top_k`; MLP =
`experts` slices of `ffn_dim / experts`, top `top_k`; patches of `patch_size` tokens.
"""

from __future__ import annotations

import copy

from torch import nn

from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.uoe.decompose import split_attention, split_mlp
from models.uoe.routing import Capacity, RoutingConfig
from models.uoe.smha import SelectiveAttention
from models.uoe.uome import UnionMLP

VARIANTS = ("paper", "corrected")


def routing_configs(cfg: ModelConfig, variant: str) -> tuple[RoutingConfig, RoutingConfig]:
    """(attention routing, MLP routing) of a variant for this model config."""
    if variant == "paper":
        common = dict(
            patch_size=cfg.patch_size, mask_padding=False, weighted=False, balance_loss_weight=0.0
        )
        attn_capacity, mlp_capacity = Capacity("max_load"), Capacity("fraction", 0.5)
    elif variant == "corrected":
        common = dict(
            patch_size=cfg.patch_size,
            mask_padding=True,
            weighted=True,
            balance_loss_weight=cfg.balance_loss_weight,
        )
        attn_capacity = mlp_capacity = Capacity("factor", cfg.capacity_factor)
    else:
        raise ValueError(f"unknown UoE variant {variant!r}; variants: {VARIANTS}")
    attn = RoutingConfig(cfg.heads, cfg.attn_top_k, attn_capacity, **common)
    mlp = RoutingConfig(cfg.experts, cfg.top_k, mlp_capacity, **common)
    return attn, mlp


def build_uoe(
    cfg: ModelConfig,
    task: ModelTask,
    variant: str,
    routing: tuple[RoutingConfig, RoutingConfig] | None = None,
) -> SequenceClassifier:
    """A UoE classifier; `routing` replaces the variant's (attention, MLP) routing if given."""
    attn, mlp = routing or routing_configs(cfg, variant)
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: SelectiveAttention(cfg.dim, cfg.heads, attn, cfg.attn_dropout),
        make_ffn=lambda _layer: UnionMLP(cfg.dim, cfg.ffn_dim, mlp, cfg.dropout),
    )


def from_dense(
    dense: SequenceClassifier,
    cfg: ModelConfig,
    variant: str,
    routing: tuple[RoutingConfig, RoutingConfig] | None = None,
) -> SequenceClassifier:
    """A UoE copy of a full_attention classifier (trained or not) with identical weights.

    Embeddings, norms and head are copied; every block's attention and MLP become SMHA and UoME
    holding the exact decomposition of the dense weights; routers are freshly initialised.
    """
    attn, mlp = routing or routing_configs(cfg, variant)
    model = copy.deepcopy(dense)
    for index, block in enumerate(model.encoder.blocks):
        if not isinstance(block.mixer, MultiHeadAttention) or not isinstance(block.ffn, DenseFFN):
            raise TypeError(
                f"block {index} has {type(block.mixer).__name__} + {type(block.ffn).__name__}; "
                "from_dense needs a full_attention model (MultiHeadAttention + DenseFFN)"
            )
        block.mixer = _smha_from(block.mixer, attn, cfg)
        block.ffn = _uome_from(block.ffn, mlp, cfg)
    return model


def _smha_from(dense: MultiHeadAttention, routing: RoutingConfig, cfg: ModelConfig) -> nn.Module:
    dim = dense.qkv.in_features
    if dense.heads != cfg.heads or dim != cfg.dim:
        raise ValueError(
            f"dense attention has dim {dim}, {dense.heads} heads but the config says "
            f"dim {cfg.dim}, {cfg.heads} heads; pass the config the dense model was built with"
        )
    part = SelectiveAttention(dim, dense.heads, routing, dense.attn_dropout)
    q, o = dense.qkv, dense.out
    part.load_experts(split_attention(q.weight, q.bias, o.weight, o.bias, dense.heads))
    return part.to(q.weight.device)


def _uome_from(dense: DenseFFN, routing: RoutingConfig, cfg: ModelConfig) -> nn.Module:
    dim, hidden = dense.up.in_features, dense.up.out_features
    part = UnionMLP(dim, hidden, routing, cfg.dropout)
    u, d = dense.up, dense.down
    part.load_experts(split_mlp(u.weight, u.bias, d.weight, d.bias, routing.num_experts))
    return part.to(u.weight.device)
