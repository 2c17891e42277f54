"""Permute (gather rows by expert) and unpermute (weighted scatter-add back) around a GEMM."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dispatch:
    """Where each (token, expert) assignment goes, sorted by expert (stable: token order kept).

    order: (A,) int64, the position in the caller's assignment list of each sorted row, so a
        per-assignment tensor `w` is put in row order with `w[order]`.
    token_index: (A,) int64, the token each sorted row reads and writes back to.
    expert_index: (A,) int64, the expert of each sorted row (non-decreasing).
    counts: (E,) int64, rows per expert.
    offsets: (E,) int32, cumulative end row of each expert (the `torch._grouped_mm` convention).
    num_tokens: T, the number of rows `unpermute` returns.
    """

    order: torch.Tensor
    token_index: torch.Tensor
    expert_index: torch.Tensor
    counts: torch.Tensor
    offsets: torch.Tensor
    num_tokens: int

    @property
    def num_experts(self) -> int:
        return int(self.counts.shape[0])

    @staticmethod
    def build(
        token_index: torch.Tensor, expert_index: torch.Tensor, num_experts: int, num_tokens: int
    ) -> Dispatch:
        """From parallel (A,) lists of assignments: token t goes to expert e.

        Assignments with expert -1 are dropped (a token over an expert's capacity).
        """
        if token_index.shape != expert_index.shape or token_index.dim() != 1:
            raise ValueError(
                f"token_index {tuple(token_index.shape)} and expert_index "
                f"{tuple(expert_index.shape)} must be equal 1-D shapes"
            )
        kept = torch.nonzero(expert_index >= 0).squeeze(1)  # (A_kept,)
        experts = expert_index[kept]
        if experts.numel() and int(experts.max()) >= num_experts:
            raise ValueError(f"expert index {int(experts.max())} >= num_experts {num_experts}")
        sort = torch.sort(experts, stable=True).indices
        order = kept[sort]  # (A,)
        sorted_experts = expert_index[order]
        counts = torch.bincount(sorted_experts, minlength=num_experts)  # (E,)
        return Dispatch(
            order=order,
            token_index=token_index[order],
            expert_index=sorted_experts,
            counts=counts,
            offsets=torch.cumsum(counts, 0).to(torch.int32),
            num_tokens=num_tokens,
        )

    @staticmethod
    def top_k(expert_index: torch.Tensor, num_experts: int) -> Dispatch:
        """From (T, k) top-k expert choices per token (-1 = dropped)."""
        tokens, k = expert_index.shape
        token_index = torch.arange(tokens, device=expert_index.device).repeat_interleave(k)
        return Dispatch.build(token_index, expert_index.reshape(-1), num_experts, tokens)


def permute(x: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """(T, D) -> (A, D): the rows each expert reads, grouped by expert."""
    return x.index_select(0, dispatch.token_index)


def unpermute(
    rows: torch.Tensor, dispatch: Dispatch, row_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(A, N) -> (T, N): sum each token's expert outputs, each scaled by `row_weight` (A,) in
    row order (None = unweighted union). Tokens with no assignment get zeros."""
    if row_weight is not None:
        rows = rows * row_weight.to(rows.dtype)[:, None]
    out = rows.new_zeros(dispatch.num_tokens, rows.shape[1])
    return out.index_add(0, dispatch.token_index, rows)
