"""UoE hierarchical routing: expert selection, then patch-wise data selection.

Level 1, expert selection: a softmax gate s = softmax(W_g x + b_g) over E experts, per token
(level "token") or once per sequence from its masked mean (level "sample"; the released
per-sample code gates the flattened sequence with a Linear(L D -> E) instead); each token keeps
its top-k experts: m_e = 1 for them, 0 for the others.
Ranking score of a token for expert e (`rank_norm`), a = s_e m_e:
  none   a                                  (uoe)
  token  a / (sum_e' a_e' + eps)            (the released attention gate, process_v2.SwitchGate)
  batch  a / (sum over the batch at the same position of a + eps)   (the released MLP gate,
         mlps_v2.SwitchGate: which tokens an expert keeps depends on the other sequences)
with eps = `rank_eps` (1.0 as released); the released factors capacity and int(capacity B) scale
every score alike and change no ranking, so they are left out.
Level 2, data selection: the sequence is cut into patches of p tokens (p = 1: token level); a
patch's score for expert e is the mean of its real tokens' scores; each expert keeps at most c
patches per sequence, best score first (ties: earlier patch), then puts them back in position
order. The corrected behaviour scales each output by k x the patch mean of r, r = s renormalised
over the token's top-k (so a uniform gate gives weight 1, the dense scale).

Capacity c (in patches, per sequence):
  factor    ceil(value * k * n / E), n = real patches of the sequence (fair share x factor)
  fraction  floor(value * n)          (the released MLP rule is fraction 0.5 of L)
  max_load  the busiest expert's demand (the released attention rule: nothing dropped)

Two behaviours, set by `mask_padding`:
  True (corrected `uoe`): padding and slots an expert did not fill are never processed; the
    capacity is per sequence, so a sequence's output does not depend on the rest of the batch.
  False (released code, `uoe_paper`): padding is routed like a real token and, when an expert
    was chosen by fewer than c patches, the free slots are filled with unchosen patches
    (in position order here; arbitrary ties in the released code) that are processed as real;
    max_load is taken over the whole batch, as released.
Causal form (a language model, `causal_obstacle`): a token's routing and whether it is kept must
not depend on later tokens. That holds only for token-level selection of patches of one token,
with padding masked and a capacity that drops nothing (max_load): then every token keeps its
own top-k experts whatever the rest of the sequence does. Sample-level selection (the sequence's
mean), patches (a patch's mean score) and any binding capacity (an expert keeping its best c
tokens of the segment: expert choice) all read later tokens; the released fillers do too.
Attention keys are always restricted to real tokens (the released code masks them too; how a
head row with no real key is handled is SMHA's business, `smha.py`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.kernels import Dispatch, take_rows
from models.layers.lazy_stats import LazyStats

STAT_KEYS = ("tokens_per_expert", "load_max_over_mean", "load_cv", "dropped_fraction", "aux_loss")
CAPACITY_RULES = ("factor", "fraction", "max_load")
LEVELS = ("token", "sample")
RANK_NORMS = ("none", "token", "batch")
GATE_INITS = ("xavier", "default")


@dataclass(frozen=True)
class Capacity:
    """How many patches an expert may keep per sequence; `value` is unused by max_load."""

    rule: str
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.rule not in CAPACITY_RULES:
            raise ValueError(f"unknown capacity rule {self.rule!r}; rules: {CAPACITY_RULES}")
        if self.rule != "max_load" and self.value <= 0:
            raise ValueError(f"capacity {self.rule} needs a positive value, got {self.value}")


@dataclass(frozen=True)
class RoutingConfig:
    """One UoE part's routing. `weighted`: expert outputs scaled by the gate (router learns);
    `balance_loss_weight` > 0 adds the load-balancing loss (and reports it in the stats)."""

    num_experts: int
    top_k: int
    capacity: Capacity
    patch_size: int = 1
    level: str = "token"
    mask_padding: bool = True
    weighted: bool = True
    balance_loss_weight: float = 0.0
    rank_norm: str = "none"
    rank_eps: float = 1.0
    gate_init: str = "xavier"  # "xavier": Xavier-normal, zero bias; "default": nn.Linear's own

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(
                f"top_k {self.top_k} must be in [1, {self.num_experts}] (the number of experts); "
                "fix model.top_k / model.attn_top_k"
            )
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be >= 1, got {self.patch_size}")
        if self.level not in LEVELS:
            raise ValueError(f"unknown routing level {self.level!r}; levels: {LEVELS}")
        if self.rank_norm not in RANK_NORMS:
            raise ValueError(f"unknown rank_norm {self.rank_norm!r}; choose one of {RANK_NORMS}")
        if self.gate_init not in GATE_INITS:
            raise ValueError(f"unknown gate_init {self.gate_init!r}; choose one of {GATE_INITS}")


@dataclass(frozen=True)
class Selection:
    """What each expert processes, as B x E rows of C token slots in position order.

    positions (B, E, C) int64: the token of each slot (clamped into [0, L) where `valid` is False)
    valid (B, E, C) bool: the slot is computed and its output scatter-added back
    key_mask (B, E, C) bool: the slot may serve as an attention key (valid and a real token)
    weight (B, E, C) float or None: the output scale of each slot (None: unweighted union)
    aux_loss: unweighted balance loss (differentiable) or None
    stats: routing statistics per the project conventions (detached; computed on first read)
    """

    positions: torch.Tensor
    valid: torch.Tensor
    key_mask: torch.Tensor
    weight: torch.Tensor | None
    aux_loss: torch.Tensor | None
    stats: Mapping[str, torch.Tensor]


def causal_obstacle(cfg: RoutingConfig) -> str | None:
    """Why this routing has no causal form (module doc), or None when it has one."""
    if cfg.level == "sample":
        return (
            "expert selection per sample gates the mean over the whole sequence, so every "
            "token's experts depend on later tokens"
        )
    if cfg.patch_size > 1:
        return (
            f"patch-wise data selection scores a patch of {cfg.patch_size} tokens by their mean "
            "and lets each expert rank the patches of the whole sequence, so a token's routing "
            "depends on later tokens"
        )
    if not cfg.mask_padding:
        return (
            "the released routing fills an expert's free slots with tokens it did not choose, "
            "so what a token gets depends on the other tokens' choices"
        )
    if cfg.capacity.rule != "max_load":
        return (
            f"capacity rule {cfg.capacity.rule!r} lets each expert keep its best-scored tokens "
            "of the whole sequence (expert choice), so whether token t is kept depends on "
            "later tokens' scores; only a capacity that drops nothing (max_load) is causal"
        )
    return None


def balance_loss(
    probs: torch.Tensor, chosen: torch.Tensor, top_k: int, mask: torch.Tensor
) -> torch.Tensor:
    """Switch-style load balance over the N real tokens: E * sum_e f_e * P_e, with f_e the
    share of the N*k top-k assignments that went to e and P_e the mean gate probability of e.
    probs (B, L, E) float, chosen (B, L, E) bool, mask (B, L) bool True = real: padding is
    weighted out (no boolean indexing, so no host sync). Equals 1 when both are uniform."""
    experts = probs.shape[-1]
    real = mask[..., None]  # (B, L, 1)
    tokens = mask.sum().clamp_min(1).to(probs.dtype)  # N; 0 real tokens give a zero loss
    share = (chosen & real).sum((0, 1)).to(probs.dtype) / (tokens * top_k)  # (E,)
    mean_prob = (probs * real).sum((0, 1)) / tokens  # (E,)
    return experts * (share * mean_prob).sum()


def load_stats(kept: torch.Tensor, demand: torch.Tensor) -> dict[str, torch.Tensor]:
    """kept, demand (B, L, E) bool: real token assignments kept / asked for -> the conventions'
    statistics (tokens_per_expert, load_max_over_mean, load_cv, dropped_fraction)."""
    per_expert = kept.sum((0, 1)).to(torch.float32)  # (E,)
    mean = per_expert.mean()
    wanted = demand.sum()
    return {
        "tokens_per_expert": per_expert,
        "load_max_over_mean": per_expert.max() / mean if mean > 0 else mean.new_zeros(()),
        "load_cv": per_expert.std(unbiased=False) / mean if mean > 0 else mean.new_zeros(()),
        "dropped_fraction": (1.0 - kept.sum() / wanted).to(torch.float32)
        if wanted > 0
        else mean.new_zeros(()),
    }


class Router(nn.Module):
    """The gate W_g (D -> E) and the two-level selection. `gate_init` "xavier" (Xavier-normal
    weight, zero bias) is the released attention gate's init; "default" (nn.Linear's own, with
    its bias) the released MLP gate's."""

    def __init__(self, dim: int, cfg: RoutingConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.gate = nn.Linear(dim, cfg.num_experts)
        if cfg.gate_init == "xavier":
            nn.init.xavier_normal_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> Selection:
        """x (B, L, D), mask (B, L) bool True = real -> Selection."""
        cfg = self.cfg
        batch, length, _ = x.shape
        experts, k, p = cfg.num_experts, cfg.top_k, cfg.patch_size
        routed = mask if cfg.mask_padding else torch.ones_like(mask)  # (B, L) tokens routed

        if cfg.level == "token":
            probs = torch.softmax(self.gate(x), dim=-1)  # (B, L, E)
        else:
            weights = routed.to(x.dtype)[..., None]  # (B, L, 1)
            pooled = (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)
            probs = torch.softmax(self.gate(pooled), dim=-1)[:, None].expand(-1, length, -1)
        top = probs.topk(k, dim=-1).indices  # (B, L, k)
        chosen_tok = F.one_hot(top, experts).any(-2)  # (B, L, E)
        chosen_tok = chosen_tok & routed[..., None]  # (B, L, E)
        kept_probs = probs * chosen_tok  # (B, L, E)
        route = kept_probs / kept_probs.sum(-1, keepdim=True).clamp_min(1e-12)  # (B, L, E)
        rank = self._rank_score(kept_probs)  # (B, L, E): ranks the tokens of each expert

        # Patches: pad the sequence to P * p; pad positions are never routed. p = 1 (token
        # level) skips the patch arithmetic: each patch is its token (same values, fewer ops).
        patches = math.ceil(length / p)
        pad = patches * p - length
        if p == 1:
            real_count = routed.long()  # (B, P)
            score, chosen = rank, chosen_tok  # (B, P, E)
        else:
            real_count = F.pad(routed, (0, pad)).view(batch, patches, p).sum(-1)  # (B, P)
            per_patch = real_count.clamp_min(1)[..., None]  # (B, P, 1)
            score = _patch_sum(rank, pad, p) / per_patch  # (B, P, E) ranking score
            chosen = F.pad(chosen_tok, (0, 0, 0, pad)).view(batch, patches, p, experts).any(2)

        cap = self._capacity(chosen, (real_count > 0).sum(-1), patches)  # (B,)
        slots = int(cap.max())  # a shape: the one host sync of the selection
        key = torch.where(chosen, score, -1.0).transpose(1, 2)  # (B, E, P)
        ranked = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., :slots]
        taken = torch.arange(slots, device=x.device)[None, None, :] < cap[:, None, None]
        taken = taken.expand(batch, experts, slots)  # (B, E, c)
        # Back to position order, the slots over capacity last.
        by_position = torch.sort(torch.where(taken, ranked, ranked + patches), dim=-1).indices
        patch_index = ranked.gather(-1, by_position)  # (B, E, c)
        taken = taken.gather(-1, by_position)
        patch_chosen = chosen.transpose(1, 2).gather(-1, patch_index) & taken  # (B, E, c)
        active = patch_chosen if cfg.mask_padding else taken

        if p == 1:
            positions, exists, valid = patch_index, None, active  # (B, E, C), C = c
        else:
            offsets = torch.arange(p, device=x.device)
            positions = (patch_index[..., None] * p + offsets).flatten(-2)  # (B, E, C = c p)
            exists = positions < length
            positions = positions.clamp(max=length - 1)
            valid = active.repeat_interleave(p, -1) & exists
        real = mask[:, None, :].expand(-1, experts, -1).gather(-1, positions)  # (B, E, C)
        if cfg.mask_padding:
            valid = valid & real
        weight = None
        if cfg.weighted:
            # The gate of each slot's patch: a gather at distinct patches (take_rows: its
            # backward is a copy, not gather's scatter-add).
            patch_route = route if p == 1 else _patch_sum(route, pad, p) / per_patch
            row_start = torch.arange(batch * experts, device=x.device).view(batch, experts, 1)
            flat_index = (row_start * patches + patch_index).reshape(-1)  # (B E c,)
            flat_route = patch_route.transpose(1, 2).reshape(-1)  # (B E P,)
            weight = k * take_rows(flat_route, flat_index).view(batch, experts, slots)
            if p > 1:
                weight = weight.repeat_interleave(p, -1)  # (B, E, C)

        aux = None
        if cfg.balance_loss_weight > 0:
            aux = balance_loss(probs, chosen_tok, k, mask)

        def stats() -> dict[str, torch.Tensor]:
            # Real tokens only, whatever the behaviour routes; computed when first read.
            demand = mask[..., None] & (
                chosen if p == 1 else chosen.repeat_interleave(p, 1)[:, :length]
            )  # (B, L, E)
            kept_slots = patch_chosen if p == 1 else patch_chosen.repeat_interleave(p, -1) & exists
            kept_by = torch.zeros(batch, experts, length, device=x.device)
            kept_by = kept_by.scatter_add(-1, positions, kept_slots.to(torch.float32)) > 0
            values = load_stats(demand & kept_by.transpose(1, 2), demand)  # kept_by (B, E, L)
            values["aux_loss"] = aux.detach() if aux is not None else x.new_zeros(())
            return values

        return Selection(positions, valid, valid & real, weight, aux, LazyStats(STAT_KEYS, stats))

    def _rank_score(self, kept_probs: torch.Tensor) -> torch.Tensor:
        """(B, L, E) s * m -> (B, L, E) ranking score (module doc, `rank_norm`)."""
        norm, eps = self.cfg.rank_norm, self.cfg.rank_eps
        if norm == "token":
            return kept_probs / (kept_probs.sum(-1, keepdim=True) + eps)
        if norm == "batch":
            return kept_probs / (kept_probs.sum(0, keepdim=True) + eps)
        return kept_probs

    def _capacity(
        self, chosen: torch.Tensor, real_patches: torch.Tensor, total: int
    ) -> torch.Tensor:
        """chosen (B, P, E) bool, real_patches (B,) -> capacity in patches per sequence (B,)."""
        rule, value = self.cfg.capacity.rule, self.cfg.capacity.value
        experts, k = self.cfg.num_experts, self.cfg.top_k
        if rule == "factor":
            cap = torch.ceil(value * k * real_patches.to(torch.float64) / experts).long()
        elif rule == "fraction":
            cap = torch.floor(value * real_patches.to(torch.float64)).long()
        else:
            cap = chosen.sum(1).amax(-1)  # (B,) the busiest expert of each sequence
            if not self.cfg.mask_padding:
                cap = cap.amax().expand_as(cap)  # released: the busiest row of the batch
        return cap.clamp(min=1, max=total)


def _patch_sum(values: torch.Tensor, pad: int, p: int) -> torch.Tensor:
    """(B, L, E) -> (B, P, E): the sum over each patch of p tokens (the sequence padded by pad)."""
    batch, _, experts = values.shape
    return F.pad(values, (0, 0, 0, pad)).view(batch, -1, p, experts).sum(2)


def dispatch(selection: Selection, length: int) -> tuple[Dispatch, torch.Tensor | None]:
    """The kernels' Dispatch of a selection's valid slots and their output weights in row order.

    Slots are listed expert-major, (E, B, C) flattened (`Dispatch.from_slots`: no sort), so
    `Dispatch.order` indexes an (E * B * C) slot buffer directly.
    """
    batch, experts, _ = selection.positions.shape
    device = selection.positions.device
    rows = torch.arange(batch, device=device)[:, None, None] * length
    token_of_slot = (rows + selection.positions).transpose(0, 1).reshape(experts, -1)  # (E, B C)
    valid = selection.valid.transpose(0, 1).reshape(experts, -1)  # (E, B C)
    plan = Dispatch.from_slots(token_of_slot, valid, batch * length)
    weight = None
    if selection.weight is not None:
        weight = take_rows(selection.weight.transpose(0, 1).reshape(-1), plan.order)  # (A,)
    return plan, weight
