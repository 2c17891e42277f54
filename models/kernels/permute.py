"""Permute (gather rows by expert) and unpermute (weighted sum back per token) around a GEMM.

Both directions are gathers, forward and backward, so they are bit-repeatable at any thread
count and never run a scatter-add: the sum of a token's expert rows reads them from a
token-major (T, m) slot table (`Dispatch.row_of_slot`, m = the most rows any token has) and
adds the m slots in expert order, `view(T, m, N).sum(1)`; the gradient of a gather by
`token_index` is that same sum, and the gradient of the sum is the gather.
"""

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
    row_of_slot: (T * m,) int64, slot j of token t (t * m + j) holds row row_of_slot[t * m + j]:
        the token's j-th row in expert order, or A (no row: the slot adds zero).
    slots_per_token: m, the most rows any token has (0 when there are no rows).
    """

    order: torch.Tensor
    token_index: torch.Tensor
    expert_index: torch.Tensor
    counts: torch.Tensor
    offsets: torch.Tensor
    num_tokens: int
    row_of_slot: torch.Tensor
    slots_per_token: int

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
        sorted_tokens = token_index[order]
        counts = torch.bincount(sorted_experts, minlength=num_experts)  # (E,)
        row_of_slot, slots = _slot_table(sorted_tokens, num_tokens)
        return Dispatch._of_sorted_rows(
            order, sorted_tokens, sorted_experts, counts, num_tokens, row_of_slot, slots
        )

    @staticmethod
    def from_slots(token_of_slot: torch.Tensor, valid: torch.Tensor, num_tokens: int) -> Dispatch:
        """From an expert-major table of slots (UoE's selection): slot s of expert e reads token
        token_of_slot[e, s] when valid[e, s]; both (E, S). Precondition: a token holds at most
        one valid slot per expert (UoE keeps a position once per expert row).

        Equal to `build` on the flattened table (expert -1 where not valid), without its sorts:
        the valid slots, listed expert-major, are already grouped by expert, so `order` is
        their flat slot index; and a token's rows, in expert order, are ranked by a cumulative
        sum over its (at most E) experts instead of a sort by token. Host syncs: the row count A
        and m (shapes)."""
        experts, slots = valid.shape
        device = valid.device
        order = valid.reshape(-1).nonzero().squeeze(1)  # (A,) flat slot of each row
        token_index = token_of_slot.reshape(-1).index_select(0, order)  # (A,)
        expert_index = torch.div(order, slots, rounding_mode="floor")  # (A,) non-decreasing
        counts = valid.sum(1)  # (E,) int64
        rows = order.shape[0]
        cell = token_index * experts + expert_index  # (A,) the row's (token, expert) cell
        taken = torch.zeros(num_tokens * experts, dtype=torch.bool, device=device)
        taken[cell] = True
        taken = taken.view(num_tokens, experts)  # (T, E)
        per_token = taken.sum(1)  # (T,)
        m = int(per_token.max()) if rows else 0
        rank = (taken.cumsum(1) - 1).view(-1)  # (T E,) the cell's place among its token's rows
        row_of_slot = torch.full((num_tokens * m,), rows, dtype=torch.int64, device=device)
        row_of_slot[token_index * m + rank[cell]] = torch.arange(rows, device=device)
        return Dispatch._of_sorted_rows(
            order, token_index, expert_index, counts, num_tokens, row_of_slot, m
        )

    @staticmethod
    def _of_sorted_rows(
        order: torch.Tensor,
        token_index: torch.Tensor,
        expert_index: torch.Tensor,
        counts: torch.Tensor,
        num_tokens: int,
        row_of_slot: torch.Tensor,
        slots_per_token: int,
    ) -> Dispatch:
        """The Dispatch of rows already sorted by expert (both builders end here): the
        offsets follow from the counts."""
        return Dispatch(
            order=order,
            token_index=token_index,
            expert_index=expert_index,
            counts=counts,
            offsets=torch.cumsum(counts, 0).to(torch.int32),
            num_tokens=num_tokens,
            row_of_slot=row_of_slot,
            slots_per_token=slots_per_token,
        )

    @staticmethod
    def top_k(
        expert_index: torch.Tensor,
        num_experts: int,
        *,
        token_ids: torch.Tensor | None = None,
        num_tokens: int | None = None,
    ) -> Dispatch:
        """From (T, k) top-k expert choices per token (-1 = dropped). `token_ids` (T,) names
        the row of each routed token in a larger (num_tokens, D) input (the real tokens of a
        padded batch); None: the tokens are rows 0..T-1 and num_tokens is T."""
        tokens, k = expert_index.shape
        if token_ids is None:
            token_ids = torch.arange(tokens, device=expert_index.device)
            num_tokens = tokens if num_tokens is None else num_tokens
        elif num_tokens is None or token_ids.shape != (tokens,):
            raise ValueError(
                f"token_ids {tuple(token_ids.shape)} needs one id per routed token ({tokens}) "
                "and num_tokens, the rows of the input they index"
            )
        token_index = token_ids.repeat_interleave(k)  # (T k,)
        return Dispatch.build(token_index, expert_index.reshape(-1), num_experts, num_tokens)


def _slot_table(token_index: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, int]:
    """(A,) token of each expert-sorted row -> (row_of_slot (T * m,), m); see `Dispatch`."""
    rows = token_index.shape[0]
    per_token = torch.bincount(token_index, minlength=num_tokens)  # (T,)
    slots = int(per_token.max()) if rows else 0
    by_token = torch.sort(token_index, stable=True).indices  # (A,) rows of token 0, token 1, ...
    first = torch.cumsum(per_token, 0) - per_token  # (T,) position of each token's first row
    tokens_in_order = token_index[by_token]  # (A,) non-decreasing
    rank = torch.arange(rows, device=token_index.device) - first[tokens_in_order]  # (A,)
    row_of_slot = torch.full((num_tokens * slots,), rows, dtype=torch.int64, device=rank.device)
    row_of_slot[tokens_in_order * slots + rank] = by_token
    return row_of_slot, slots


SUM_CHUNK_ELEMENTS = 1 << 18  # elements of the rows gathered for one chunk of tokens


def _sum_per_token(rows: torch.Tensor, row_of_slot: torch.Tensor, tokens: int) -> torch.Tensor:
    """(A, N) -> (T, N): each token's rows added in expert order, from zero (gathers only).
    A chunk of tokens at a time, so the gathered (T m, N) table never exists whole (a chunk
    holds about SUM_CHUNK_ELEMENTS); an empty slot (no row) reads an exact 0 through `where`
    instead of a zero row appended to a copy of the rows. Each token's sum is the same
    `sum(1)` over its m slots, whatever the chunk."""
    slots = row_of_slot.numel() // tokens if tokens else 0
    count, width = rows.shape
    if slots == 0 or count == 0:
        return rows.new_zeros(tokens, width)
    table = row_of_slot.view(tokens, slots)  # (T, m)
    filled = row_of_slot.numel() == count  # dropless top-k: every slot holds a row
    chunk = max(1, SUM_CHUNK_ELEMENTS // (slots * width))
    out = rows.new_empty(tokens, width)
    for start in range(0, tokens, chunk):
        index = table[start : start + chunk]  # (c, m)
        safe = index if filled else index.clamp(max=count - 1)
        part = rows.index_select(0, safe.reshape(-1)).view(*index.shape, width)  # (c, m, N)
        if not filled:
            part = torch.where((index < count)[..., None], part, 0.0)
        out[start : start + chunk] = part.sum(1)
        del part  # before the next chunk's gather, so that only one chunk is alive
    return out


# Both Functions take the index tensors and T explicitly (not the Dispatch), so that the JIT
# tracer (fvcore) sees plain tensor and int arguments.
class _Gather(torch.autograd.Function):
    """(T, D) -> (A, D) by token_index; backward: the per-token sum (no scatter-add)."""

    @staticmethod
    def forward(ctx, x, token_index, row_of_slot):
        ctx.save_for_backward(token_index, row_of_slot)
        ctx.tokens = x.shape[0]
        return x.index_select(0, token_index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        token_index, row_of_slot = ctx.saved_tensors
        summed = _SumPerToken.apply(grad.contiguous(), token_index, row_of_slot, ctx.tokens)
        return summed, None, None


class _SumPerToken(torch.autograd.Function):
    """(A, N) -> (T, N) per-token sum; backward: the gather by token_index."""

    @staticmethod
    def forward(ctx, rows, token_index, row_of_slot, tokens):
        ctx.save_for_backward(token_index, row_of_slot)
        return _sum_per_token(rows, row_of_slot, tokens)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        token_index, row_of_slot = ctx.saved_tensors
        return _Gather.apply(grad, token_index, row_of_slot), None, None, None


def permute(x: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """(T, D) -> (A, D): the rows each expert reads, grouped by expert."""
    if x.shape[0] != dispatch.num_tokens:
        raise ValueError(f"x has {x.shape[0]} rows but the dispatch is for {dispatch.num_tokens}")
    return _Gather.apply(x, dispatch.token_index, dispatch.row_of_slot)


def unpermute(
    rows: torch.Tensor, dispatch: Dispatch, row_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """(A, N) -> (T, N): sum each token's expert outputs, each scaled by `row_weight` (A,) in
    row order (None = unweighted union). Tokens with no assignment get zeros."""
    if row_weight is not None:
        rows = rows * row_weight.to(rows.dtype)[:, None]
    return _SumPerToken.apply(
        rows.contiguous(), dispatch.token_index, dispatch.row_of_slot, int(dispatch.num_tokens)
    )  # int(): under the JIT tracer (fvcore) a shape-derived T is a traced value


def add_expert_bias(rows: torch.Tensor, bias: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """(A, N) rows + bias (E, N) of each row's expert. `index_select`, not `bias[index]`:
    the backward of advanced indexing accumulates with parallel atomic adds on the CPU (the
    bias gradient then differs from run to run with 2 threads); index_select's backward is an
    index_add, which sums each expert's rows in row order."""
    return rows + bias.index_select(0, dispatch.expert_index)


class _TakeUnique(torch.autograd.Function):
    """(R, ...) -> (A, ...) rows at distinct indices; backward: the gradient copied back into
    zeros (no accumulation needed, so no scatter-add and no atomic adds)."""

    @staticmethod
    def forward(ctx, values, index):
        ctx.save_for_backward(index)
        ctx.rows = values.shape[0]
        return values.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        return grad.new_zeros((ctx.rows, *grad.shape[1:])).index_copy(0, index, grad), None


def take_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values (R, ...) -> values[index] (A, ...) for DISTINCT indices (a Dispatch's `order`):
    `values[index]`'s backward accumulates with index_put; distinct rows only need a copy."""
    return _TakeUnique.apply(values, index)
