"""UoE in its two behaviours, "paper" and "corrected" (the models `baselines/uoe.py` registers
use them), and the dense -> UoE conversion.

`uoe_paper` ("paper") is the released LRA code (reference/uoe.md §1.3-1.4; `sparse_attention_v3`,
`mlps_v2`, `process_v2`): unweighted union of expert outputs, so the routers get no gradient;
no balance loss; padding routed and filler tokens processed as real ones; the attention ranks
tokens by s m / (sum_e s m + 1), the MLP by s m / (sum over the batch of s m + 1); attention
capacity = the batch's maximum load, MLP capacity L/2; per-expert output biases, the release's
initialisation (Xavier-normal expert slices and attention gate, nn.Linear default MLP gate, zero
biases) and its unused parameters (`release_init`). On the released backbone
(`--set model.norm=rms --set model.rope=true --set model.pool=sum_over_L`) it is the released
model: `load_released_state_dict` (models/uoe/released.py) loads a released checkpoint, and
tests/test_uoe_released.py checks it against a looped implementation of the released equations.

`uoe` ("corrected") is the project's model: expert outputs weighted by the gate (k x the top-k
renormalised probability, so a uniform gate gives weight 1 and the union stays on the dense
scale), a load-balancing loss weighted by `balance_loss_weight`, padding and fillers never
processed, capacity per sequence, dropped tokens counted.

Both honour the hierarchical routing options, the UoE models' own fields (`UoEFields`, set with
`--set model.FIELD=VALUE`):
  attn_top_k     head-experts per token (of `heads`)
  routing_level  "token" | "sample" (each sequence picks its top-k experts from its masked mean)
  patch_size     tokens per patch of data selection (0 = the model's own: 1, token level)
  capacity_rule  by name, for both parts (CAPACITY_RULES below); "default" keeps each model's
                 own: uoe factor, uoe_paper max_load (attention) and half (MLP), and at the
                 sample level max_load everywhere, since in the released per-sample code each
                 chosen expert processes the whole sample.
Registered on top: `uoe_patch` = uoe with patches (UOE_PATCH_TOKENS unless model.patch_size is
set), `uoe_sample` = uoe with routing_level "sample", and `uoe_causal` = uoe with the only
routing that has a causal form (`causal_fields`).

Causal form (a language model, `ModelTask.causal`): SMHA masks, within each head-expert, the
slots holding later tokens; the routing must be causal too (`routing.causal_obstacle`).
- "paper" is built as released whatever the routing: its MLP experts keep the top L/2 tokens of
  the segment and its attention fills free slots with unchosen tokens, so position t's output
  moves with later tokens (reference/uoe.md section 1.6). Kept on purpose: the causality probe
  must find it, and the LM suite marks it.
- "corrected" raises `NoCausalForm` naming the obstacle unless its routing has none: token-level
  selection, patches of one token, capacity max_load. `uoe_causal` is that configuration.
  What it gives up against `uoe`: the second routing level (no expert chooses its data: every
  token keeps its own top-k experts, so there is no capacity limit and an expert's work is its
  demand, kept even only by the balance loss), patches, and per-sample selection. What it keeps:
  the exact decomposition (every expert taking every token is still the dense model), SMHA's
  head-experts chosen per query token, the gate-weighted union and the balance loss.

Layout as released: attention = `heads` head-experts, top `attn_top_k`; MLP = `experts` slices
of `ffn_dim / experts`, top `top_k`.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from torch import nn

from models.config import ModelConfig, ModelTask, check_choice, check_field
from models.errors import InputError, NoCausalForm
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import SequenceClassifier, build_classifier
from models.layers.ffn import DenseFFN
from models.layers.language_model import LanguageModel
from models.uoe.decompose import split_attention, split_mlp
from models.uoe.routing import Capacity, RoutingConfig, causal_obstacle
from models.uoe.smha import SelectiveAttention
from models.uoe.uome import UnionMLP

BEHAVIOURS = ("paper", "corrected")
ROUTING_LEVELS = ("token", "sample")
CAPACITY_RULES = ("default", "factor", "half", "max_load")
UOE_PATCH_TOKENS = 8  # uoe_patch's tokens per patch when model.patch_size is 0 (our choice)
RELEASED_RANK_EPS = 1.0  # the released gates' epsilon (run_tasks.py --epsilon)


@dataclass(frozen=True)
class UoEFields:
    """The UoE models' own fields (uoe, uoe_paper, uoe_patch, uoe_sample; module doc)."""

    attn_top_k: int = 1
    """Head-experts each token is routed to, of `model.heads`."""
    patch_size: int = 0
    """Tokens per patch of data selection; 0 = the model's own (1, token level; uoe_patch:
    UOE_PATCH_TOKENS)."""
    routing_level: str = "token"
    """Expert selection per "token" or per "sample"."""
    capacity_rule: str = "default"
    """The capacity of both parts, by name: "default" (each model's own), "factor"
    (capacity_factor x the fair share), "half" (L/2), "max_load" (the busiest expert)."""

    def __post_init__(self) -> None:
        check_field("attn_top_k", self.attn_top_k, self.attn_top_k >= 1, "an integer >= 1")
        check_field(
            "patch_size",
            self.patch_size,
            self.patch_size >= 0,
            "an integer >= 0 (0 = the model's own)",
        )
        check_choice("routing_level", self.routing_level, ROUTING_LEVELS)
        check_choice("capacity_rule", self.capacity_rule, CAPACITY_RULES)

    def check_shape(self, cfg: ModelConfig) -> None:
        """attn_top_k within the heads (models.registry)."""
        if self.attn_top_k > cfg.heads:
            raise InputError(
                f"model.attn_top_k={self.attn_top_k} must be in [1, model.heads={cfg.heads}]"
            )


DEFAULT_FIELDS = UoEFields()


def capacities(cfg: ModelConfig, own: UoEFields, behaviour: str) -> tuple[Capacity, Capacity]:
    """(attention, MLP) capacity of a behaviour under `own.capacity_rule` (module doc)."""
    named = {
        "factor": Capacity("factor", cfg.capacity_factor),
        "half": Capacity("fraction", 0.5),
        "max_load": Capacity("max_load"),
    }
    rule = own.capacity_rule
    if rule != "default":
        return named[rule], named[rule]
    if own.routing_level == "sample":
        return named["max_load"], named["max_load"]
    if behaviour == "paper":
        return named["max_load"], named["half"]
    return named["factor"], named["factor"]


def routing_configs(
    cfg: ModelConfig, own: UoEFields, behaviour: str
) -> tuple[RoutingConfig, RoutingConfig]:
    """(attention routing, MLP routing) of a behaviour for this shape and these fields."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown UoE behaviour {behaviour!r}; behaviours: {BEHAVIOURS}")
    attn_capacity, mlp_capacity = capacities(cfg, own, behaviour)
    common = dict(patch_size=own.patch_size or 1, level=own.routing_level)
    if behaviour == "paper":
        paper = dict(
            mask_padding=False, weighted=False, balance_loss_weight=0.0, rank_eps=RELEASED_RANK_EPS
        )
        attn = RoutingConfig(
            cfg.heads, own.attn_top_k, attn_capacity, **common, **paper, rank_norm="token"
        )
        mlp = RoutingConfig(
            cfg.experts,
            cfg.top_k,
            mlp_capacity,
            **common,
            **paper,
            rank_norm="batch",
            gate_init="default",
        )
        return attn, mlp
    corrected = dict(mask_padding=True, weighted=True, balance_loss_weight=cfg.balance_loss_weight)
    attn = RoutingConfig(cfg.heads, own.attn_top_k, attn_capacity, **common, **corrected)
    mlp = RoutingConfig(cfg.experts, cfg.top_k, mlp_capacity, **common, **corrected)
    return attn, mlp


def patch_fields(own: UoEFields) -> UoEFields:
    """uoe_patch's fields: patches of UOE_PATCH_TOKENS tokens unless model.patch_size is set."""
    return dataclasses.replace(own, patch_size=own.patch_size or UOE_PATCH_TOKENS)


def sample_fields(own: UoEFields) -> UoEFields:
    """uoe_sample's fields: expert selection per sample."""
    return dataclasses.replace(own, routing_level="sample")


def causal_fields(own: UoEFields) -> UoEFields:
    """uoe_causal's fields: capacity max_load (drops nothing) unless model.capacity_rule is set;
    token level and patches of one token as in uoe (module doc)."""
    rule = "max_load" if own.capacity_rule == "default" else own.capacity_rule
    return dataclasses.replace(own, capacity_rule=rule)


def build_uoe(
    cfg: ModelConfig,
    task: ModelTask,
    behaviour: str,
    own: UoEFields = DEFAULT_FIELDS,
    routing: tuple[RoutingConfig, RoutingConfig] | None = None,
    *,
    name: str = "uoe",
) -> SequenceClassifier:
    """A UoE classifier, or for a causal task its causal form (module doc; `name`, the
    registered model, words a `NoCausalForm`); `routing` replaces the behaviour's (attention,
    MLP) routing if given."""
    own.check_shape(cfg)
    attn, mlp = routing or routing_configs(cfg, own, behaviour)
    released = behaviour == "paper"
    if task.causal and not released:
        for part, part_routing in (("attention", attn), ("MLP", mlp)):
            obstacle = causal_obstacle(part_routing)
            if obstacle is not None:
                raise NoCausalForm(
                    f"{name} has no causal form: in its {part}, {obstacle} (uoe_causal is UoE's "
                    "causal variant: token-choice top-k with nothing dropped)"
                )
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: SelectiveAttention(
            cfg.dim, cfg.heads, attn, cfg.attn_dropout, released=released, causal=task.causal
        ),
        make_ffn=lambda _layer: UnionMLP(
            cfg.dim, cfg.ffn_dim, mlp, cfg.dropout, released_max_len=task.max_len * released
        ),
    )


def from_dense(
    dense: SequenceClassifier | LanguageModel,
    cfg: ModelConfig,
    behaviour: str,
    own: UoEFields = DEFAULT_FIELDS,
    routing: tuple[RoutingConfig, RoutingConfig] | None = None,
) -> SequenceClassifier | LanguageModel:
    """A UoE copy of a full_attention classifier or language model (trained or not) with
    identical weights.

    Embeddings, norms and head are copied; every block's attention and MLP become SMHA and UoME
    holding the exact decomposition of the dense weights (SMHA causal where the dense attention
    is); routers are freshly initialised.
    """
    attn, mlp = routing or routing_configs(cfg, own, behaviour)
    released = behaviour == "paper"
    max_len = dense.encoder.embed.positions.num_embeddings
    model = copy.deepcopy(dense)
    for index, block in enumerate(model.encoder.blocks):
        if not isinstance(block.mixer, MultiHeadAttention) or not isinstance(block.ffn, DenseFFN):
            raise TypeError(
                f"block {index} has {type(block.mixer).__name__} + {type(block.ffn).__name__}; "
                "from_dense needs a full_attention model (MultiHeadAttention + DenseFFN)"
            )
        block.mixer = _smha_from(block.mixer, attn, cfg, released)
        block.ffn = _uome_from(block.ffn, mlp, cfg, max_len * released)
    return model


def _smha_from(
    dense: MultiHeadAttention, routing: RoutingConfig, cfg: ModelConfig, released: bool
) -> nn.Module:
    dim = dense.qkv.in_features
    if dense.heads != cfg.heads or dim != cfg.dim:
        raise ValueError(
            f"dense attention has dim {dim}, {dense.heads} heads but the config says "
            f"dim {cfg.dim}, {cfg.heads} heads; pass the config the dense model was built with"
        )
    part = SelectiveAttention(
        dim, dense.heads, routing, dense.attn_dropout, released=released, causal=dense.causal
    )
    q, o = dense.qkv, dense.out
    part.load_experts(split_attention(q.weight, q.bias, o.weight, o.bias, dense.heads))
    return part.to(q.weight.device)


def _uome_from(
    dense: DenseFFN, routing: RoutingConfig, cfg: ModelConfig, released_max_len: int
) -> nn.Module:
    dim, hidden = dense.up.in_features, dense.up.out_features
    part = UnionMLP(dim, hidden, routing, cfg.dropout, released_max_len=released_max_len)
    u, d = dense.up, dense.down
    part.load_experts(split_mlp(u.weight, u.bias, d.weight, d.bias, routing.num_experts))
    return part.to(u.weight.device)
