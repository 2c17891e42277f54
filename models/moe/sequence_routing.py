"""Token-choice MoE FFNs whose expert capacity is counted per SEQUENCE (Skywork-MoE, XMoE).

A capacity counted over the flattened batch in position order makes a sequence's output depend on
its batch-mates. Here each (sequence, expert) pair has its own budget of slots, computed from
that sequence's number of real tokens, so a sequence routes the same alone and inside a batch.

A router (a subclass's `route_tokens`) lists its (token, expert) assignments token-major (the
real tokens in batch order, each token's choices in its own order) with their gate weights;
`keep_within_capacity` keeps, in each (sequence, expert) group, the first `capacity` of them
in the router's priority order. Padding is never routed: it takes no slot and gets output 0.
The experts, the grouped GEMMs, the FLOP formula and the kernel report are `MoEFFN`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from models.kernels import Dispatch, permute, take_rows, unpermute
from models.kernels.dispatch import multiplied_rows
from models.layers.lazy_stats import LazyStats
from models.layers.parts import PartAux
from models.layers.ranges import COMBINE, DISPATCH, EXPERT_GEMM, ROUTER, phase
from models.moe.experts import MoEFFN
from models.moe.routing import STAT_KEYS, Routing, load_stats


def sequence_capacity(
    lengths: torch.Tensor, experts: int, factor: float, per_token: float, minimum: int = 0
) -> torch.Tensor:
    """(B,) real tokens per sequence -> (B,) int64 slots each expert has in that sequence:
    max(ceil(factor * per_token * n / experts), minimum), per_token being the expert choices a
    token makes (k for top-k; XMoE's nominal k). Computed in float64, left to right."""
    if factor <= 0:
        raise ValueError(f"capacity_factor must be > 0, got {factor}")
    slots = torch.ceil(factor * per_token * lengths.to(torch.float64) / experts).to(torch.int64)
    return slots.clamp_min(minimum)


def keep_within_capacity(
    group: torch.Tensor, capacity: torch.Tensor, priority: torch.Tensor, groups: int
) -> torch.Tensor:
    """Which assignments keep a slot.

    group: (A,) int64 the (sequence, expert) group of each assignment, in 0..groups-1;
    capacity: (A,) int64 the slots of that group; priority: (A,) a permutation of 0..A-1 listing
    the assignments from first served to last. In each group the first `capacity` assignments
    in priority order are kept -> (A,) bool."""
    ordered = priority[torch.sort(group[priority], stable=True).indices]  # grouped, by priority
    sorted_group = group[ordered]  # (A,) non-decreasing
    counts = torch.bincount(sorted_group, minlength=groups)  # (G,)
    start = torch.cumsum(counts, 0) - counts  # (G,) first sorted place of each group
    rank = torch.arange(group.numel(), device=group.device) - start[sorted_group]  # (A,)
    kept = torch.empty_like(group, dtype=torch.bool)
    kept[ordered] = rank < capacity[ordered]
    return kept


@dataclass(frozen=True)
class Assignments:
    """A router's choices for the T real tokens of one call, token-major.

    token: (A,) int64 the real token (0..T-1) of each assignment; expert: (A,) int64;
    gate: (A,) fp32 the weight of its expert's output; kept: (A,) bool whether it got a slot;
    loss: the weighted auxiliary loss (None: none); balance: the unweighted balance loss (the
    `aux_loss` statistic); extra_stats: the part's statistics beyond `load_stats`', named
    `extra_keys`, computed when read."""

    token: torch.Tensor
    expert: torch.Tensor
    gate: torch.Tensor
    kept: torch.Tensor
    loss: torch.Tensor | None
    balance: torch.Tensor
    extra_stats: Callable[[], dict[str, torch.Tensor]]
    extra_keys: tuple[str, ...]


class SequenceRoutedFFN(MoEFFN):
    """An `MoEFFN` whose routing a subclass defines (`route_tokens`), its capacity per sequence.

    `MoEFFN.route` (the flattened-batch rule) is not used; the experts, `_experts`,
    `gemm_kernel`, `analytic_flops` and `inactive_parameter_count` are `MoEFFN`'s."""

    def route_tokens(
        self, logits: torch.Tensor, sequence: torch.Tensor, lengths: torch.Tensor
    ) -> Assignments:
        """logits (T, E) fp32 of the real tokens; sequence (T,) the sequence of each;
        lengths (B,) the real tokens of each sequence -> Assignments."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        """x (B, L, D), mask (B, L) True = real -> (B, L, D), PartAux (padding rows get 0)."""
        batch, length, dim = x.shape
        flat = x.reshape(batch * length, dim)  # (B L, D)
        with phase(ROUTER):
            real = mask.reshape(-1).nonzero().squeeze(1)  # (T,) rows of the real tokens
            tokens = flat.index_select(0, real)  # (T, D)
            logits = self.router(tokens).float()  # (T, E); routing math in fp32
            sequence = torch.div(real, length, rounding_mode="floor")  # (T,)
            chosen = self.route_tokens(logits, sequence, mask.sum(1))
        with phase(DISPATCH):
            expert = torch.where(chosen.kept, chosen.expert, -1)  # (A,), -1 = dropped
            token_rows = real.index_select(0, chosen.token)  # (A,) rows of the (B L) input
            dispatch = Dispatch.build(token_rows, expert, self.cfg.experts, batch * length)
            rows = permute(flat, dispatch)  # (A_kept, D)
        impl = self.gemm_kernel(rows.shape[0])
        with phase(EXPERT_GEMM):
            out = self._experts(rows, dispatch, impl)  # (A_kept, D)
        with phase(COMBINE):
            row_gate = take_rows(chosen.gate, dispatch.order)  # (A_kept,)
            y = unpermute(out, dispatch, row_gate).to(x.dtype)  # (B L, D)
        sizes = {"tokens": tokens.shape[0], "rows": multiplied_rows(impl, dispatch.counts)}
        experts = self.cfg.experts

        def stats() -> dict[str, torch.Tensor]:
            routing = Routing(expert[:, None], chosen.gate[:, None], chosen.expert[:, None])
            return {**load_stats(routing, experts, chosen.balance), **chosen.extra_stats()}

        keys = (*STAT_KEYS, *chosen.extra_keys)
        aux = PartAux(loss=chosen.loss, stats=LazyStats(keys, stats), sizes=sizes, kernel=impl)
        return y.view(batch, length, dim), aux
