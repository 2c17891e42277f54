"""XMoE's FFN (Yang et al., arXiv 2403.18926, Findings ACL 2024): small experts and threshold
routing, so each token engages as many experts as its router probabilities need.

Rule, as in the authors' `main_thresholdGating` (github.com/ysngki/XMoE, megatron/model/
mlp_gating.py): p = softmax(W x) (no bias); sort p descending; an expert is taken while the
probability mass of the experts taken BEFORE it is < threshold (the first is always taken), so
selection stops at the first expert whose cumulative probability reaches the threshold (>=).
A taken expert's output is weighted by its own p (not renormalised).

Capacity (`_capacity` there): each expert has ceil(capacity_factor * n / E) slots, at least
`min_capacity`; the authors set capacity_factor to the top-k budget (8 with 8x smaller experts),
here capacity_factor * budget with the shared factor. Counted per sequence (n its real tokens),
not over the batch. When an expert overflows, it keeps the assignments of highest priority: a
token's rank among its own choices first (first choices before second choices, ...), then the
higher probability (their importance (K - rank) + p); ties go to the earlier position.
That priority reads later tokens, so it is not causal: in the causal form (`causal=True`) an
expert serves a sequence's assignments in position order instead, first come first served.

Auxiliary loss (theirs): E * sum_e mean_t(p_e) * (share of tokens whose top-1 expert is e),
weighted by `balance_loss_weight`. Statistics add experts_per_token_mean / _max (experts taken by
the threshold, before capacity) and kept_experts_per_token_mean (after).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.moe.experts import MoEConfig
from models.moe.routing import balance_loss
from models.moe.sequence_routing import (
    Assignments,
    SequenceRoutedFFN,
    keep_within_capacity,
    sequence_capacity,
)

EXTRA_KEYS = ("experts_per_token_mean", "experts_per_token_max", "kept_experts_per_token_mean")


@dataclass(frozen=True)
class XMoEConfig:
    """dim, expert hidden width, experts; budget: the nominal experts per token (the capacity's
    multiplier and the `active` parameter count); threshold; capacity_factor, min_capacity;
    balance_loss_weight; causal: position-order capacity (module doc)."""

    dim: int
    hidden: int
    experts: int
    budget: int
    threshold: float
    capacity_factor: float
    min_capacity: int
    balance_loss_weight: float
    causal: bool = False
    dropout: float = 0.0
    impl: str | None = None  # force a grouped_mm implementation (tests); None = dispatcher

    def moe(self) -> MoEConfig:
        """The experts' shape: Linear-GELU-Linear (the bias of the second dropped below)."""
        return MoEConfig(
            dim=self.dim,
            hidden=self.hidden,
            experts=self.experts,
            top_k=self.budget,
            router="top_k",
            activation="gelu",
            capacity_factor=self.capacity_factor,
            dropout=self.dropout,
            impl=self.impl,
        )


def threshold_choice(probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, ...]:
    """(T, E) probabilities -> (sorted p (T, E), expert of each sorted place (T, E), taken (T, E)
    bool): place j is taken when the mass of places 0..j-1 is < threshold; place 0 always."""
    ordered, expert = probs.sort(dim=-1, descending=True, stable=True)  # (T, E) each
    before = torch.cumsum(ordered, -1) - ordered  # (T, E) mass of the places before
    taken = before < threshold
    taken[:, 0] = True
    return ordered, expert, taken


class XMoEFFN(SequenceRoutedFFN):
    def __init__(self, cfg: XMoEConfig) -> None:
        super().__init__(cfg.moe())
        self.xmoe = cfg
        # The authors' experts drop their output bias (Megatron's skip_bias_add, then "ignore
        # the bias term"): Linear(D, H) + bias, GELU, Linear(H, D) without bias.
        self.register_parameter("b_down", None)

    def route_tokens(
        self, logits: torch.Tensor, sequence: torch.Tensor, lengths: torch.Tensor
    ) -> Assignments:
        cfg = self.xmoe
        tokens, experts = logits.shape
        probs = torch.softmax(logits, dim=-1)  # (T, E)
        ordered, by_place, taken = threshold_choice(probs, cfg.threshold)
        places = torch.arange(experts, device=logits.device)
        token = torch.arange(tokens, device=logits.device)[:, None].expand(tokens, experts)
        token = token[taken]  # (A,) token-major (row-major boolean selection)
        expert = by_place[taken]  # (A,) each token's choices by descending p
        rank = places[None, :].expand(tokens, experts)[taken]  # (A,)
        gate = torch.masked_select(ordered, taken)  # (A,) p of the choice
        seq = sequence.index_select(0, token)  # (A,)
        slots = sequence_capacity(
            lengths, experts, cfg.capacity_factor, cfg.budget, cfg.min_capacity
        )  # (B,)
        first_served = torch.arange(expert.numel(), device=logits.device)  # position order
        if not cfg.causal:  # by rank, then higher p, then position (stable sorts, last key first)
            by_p = torch.sort(-gate.detach()[first_served], stable=True).indices
            first_served = first_served[by_p]
            first_served = first_served[torch.sort(rank[first_served], stable=True).indices]
        kept = keep_within_capacity(
            seq * experts + expert,
            slots.index_select(0, seq),
            first_served,
            lengths.numel() * experts,
        )
        balance = balance_loss(logits, by_place[:, :1])
        weight = cfg.balance_loss_weight

        def extra() -> dict[str, torch.Tensor]:
            if tokens == 0:
                return dict.fromkeys(EXTRA_KEYS, logits.new_zeros(()))
            wanted = taken.sum(-1).float()  # (T,)
            return {
                "experts_per_token_mean": wanted.mean(),
                "experts_per_token_max": wanted.max(),
                "kept_experts_per_token_mean": kept.sum().float() / tokens,
            }

        return Assignments(
            token=token,
            expert=expert,
            gate=gate,
            kept=kept,
            loss=weight * balance if weight else None,
            balance=balance,
            extra_stats=extra,
            extra_keys=EXTRA_KEYS,
        )
