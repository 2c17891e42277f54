"""Router math for token-choice MoE: Switch top-1 with capacity, Mixtral top-k; losses; stats.

Every function takes fp32 router logits of the real (non-padding) tokens only, so padding is
never routed and never counted. Normalisations (each loss is 1 at perfectly uniform routing):

    balance_loss = E * sum_e f_e * P_e
        f_e = (assignments to expert e) / (all assignments), counted BEFORE capacity dropping
              (top-1: the argmax; top-k: all k choices, so f sums to 1, not k)
        P_e = mean over tokens of softmax(logits)_e
    z_loss = mean over tokens of logsumexp(logits)^2        (ST-MoE router z-loss)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Routing:
    """expert (T, k) int64, -1 where the assignment was dropped; gate (T, k) weight of each
    assignment (0 where dropped); chosen (T, k) the choice before any dropping."""

    expert: torch.Tensor
    gate: torch.Tensor
    chosen: torch.Tensor


def capacity(tokens: int, experts: int, capacity_factor: float) -> int:
    """Rows one expert may keep: ceil(capacity_factor * tokens / experts) (Switch, eq. 3)."""
    if capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}")
    return math.ceil(capacity_factor * tokens / experts)


def switch_top1(
    logits: torch.Tensor, expert_capacity: int, fill_order: torch.Tensor | None = None
) -> Routing:
    """(T, E) logits -> top-1 routing; gate = the softmax probability of the chosen expert (not
    renormalised, so the router learns). Each expert keeps its first `expert_capacity` tokens
    in the rows' order, or in `fill_order` (T,) (a permutation of the rows) when given; later
    ones are dropped (their FFN output is 0: the residual carries them)."""
    if fill_order is not None:
        ordered = switch_top1(logits[fill_order], expert_capacity)
        back = torch.empty_like(fill_order)
        back[fill_order] = torch.arange(len(fill_order), device=fill_order.device)  # inverse
        return Routing(ordered.expert[back], ordered.gate[back], ordered.chosen[back])
    probs = torch.softmax(logits.float(), dim=-1)  # (T, E)
    gate, chosen = probs.max(dim=-1, keepdim=True)  # (T, 1) each
    one_hot = torch.nn.functional.one_hot(chosen[:, 0], logits.shape[1])  # (T, E)
    position = (torch.cumsum(one_hot, 0) * one_hot).sum(-1, keepdim=True) - 1  # (T, 1)
    kept = position < expert_capacity
    return Routing(
        expert=torch.where(kept, chosen, -1),
        gate=torch.where(kept, gate, torch.zeros_like(gate)),
        chosen=chosen,
    )


def top_k_softmax(logits: torch.Tensor, k: int) -> Routing:
    """(T, E) logits -> the k largest per token, gates = softmax over those k logits (sums to 1;
    equal to renormalising the full softmax's top-k). No capacity: nothing is dropped."""
    if not 1 <= k <= logits.shape[1]:
        raise ValueError(f"top_k={k} must be in 1..experts={logits.shape[1]}")
    top, chosen = logits.float().topk(k, dim=-1)  # (T, k) each
    return Routing(expert=chosen, gate=torch.softmax(top, dim=-1), chosen=chosen)


def balance_loss(logits: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """E * sum_e f_e P_e (module doc); gradient flows through P only. 0 for no tokens."""
    tokens, experts = logits.shape
    if tokens == 0:
        return logits.new_zeros(())
    probs = torch.softmax(logits.float(), dim=-1)  # (T, E)
    counts = torch.bincount(chosen.reshape(-1), minlength=experts).float()  # (E,)
    fraction = counts / chosen.numel()
    return experts * (fraction * probs.mean(0)).sum()


def z_loss(logits: torch.Tensor) -> torch.Tensor:
    """mean_t logsumexp(logits_t)^2; 0 for no tokens."""
    if logits.shape[0] == 0:
        return logits.new_zeros(())
    return torch.logsumexp(logits.float(), dim=-1).square().mean()


STAT_KEYS = (
    "tokens_per_expert",
    "load_max_over_mean",
    "load_cv",
    "dropped_fraction",
    "aux_loss",
)


def load_stats(routing: Routing, experts: int, balance: torch.Tensor) -> dict[str, torch.Tensor]:
    """The project's routing statistics (detached): tokens_per_expert (E,) kept assignments,
    load_max_over_mean, load_cv (population std / mean), dropped_fraction, aux_loss."""
    kept = routing.expert[routing.expert >= 0]
    per_expert = torch.bincount(kept, minlength=experts).float()  # (E,)
    mean = per_expert.mean()
    safe = mean.clamp_min(1e-12)  # no assignment at all: report 0, not nan
    assigned = routing.chosen.numel()
    dropped = (assigned - kept.numel()) / assigned if assigned else 0.0
    return {
        "tokens_per_expert": per_expert,
        "load_max_over_mean": per_expert.max() / safe,
        "load_cv": per_expert.std(unbiased=False) / safe,
        "dropped_fraction": torch.tensor(float(dropped)),
        "aux_loss": balance.detach().float(),
    }


def time_major_order(token_ids: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """token_ids (T,) flat ids b L + l of (B, L) tokens -> the permutation (T,) that visits them
    position by position (l, then b). Filling capacity in this order makes Switch causal: a
    token's drop depends only on tokens at earlier positions (and on the same position of
    earlier sequences), never on a later position of any sequence; the rows' own order (b, then
    l) would let sequence b's early tokens be dropped for sequence b-1's later ones."""
    key = (token_ids % length) * batch + token_ids // length  # (T,)
    return torch.argsort(key, stable=True)
