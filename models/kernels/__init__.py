"""Grouped GEMM for mixture-of-experts layers: the one interface every MoE part computes through.

An MoE layer computes in three steps, each a function here:

    dispatch = Dispatch.build(token_index, expert_index, num_experts, num_tokens)
    (or Dispatch.top_k(...) for top-k choices, Dispatch.from_slots(...) for UoE's slot tables)
    rows = permute(x, dispatch)                       # gather:  (T, D) -> (A, D), sorted by expert
    out = grouped_mm(rows, weight, dispatch.offsets)  # expert e multiplies its rows by weight[e]
    y = unpermute(out, dispatch, row_weight)          # weighted sum back:  (A, N) -> (T, N)

`A` is the number of (token, expert) assignments: T * k for top-k routing, fewer when tokens are
dropped, E * c for expert-choice selection. `grouped_mm` dispatches to an implementation by
device, dtype and shape (`models.kernels.dispatch`); `reference.grouped_mm_loop` is the ground
truth every implementation is tested against.
"""

from models.kernels.dispatch import grouped_mm
from models.kernels.permute import Dispatch, permute, take_rows, unpermute

__all__ = ["Dispatch", "grouped_mm", "permute", "take_rows", "unpermute"]
