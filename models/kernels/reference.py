"""The reference grouped GEMM: one matmul per expert, the ground truth for every other path."""

from __future__ import annotations

import torch


def grouped_mm_loop(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """x (A, K) rows sorted by expert, weight (E, K, N), offsets (E,) cumulative end rows
    -> (A, N), rows of expert e multiplied by weight[e]. Differentiable through autograd."""
    if x.dim() != 2 or weight.dim() != 3 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"shapes x {tuple(x.shape)}, weight {tuple(weight.shape)} do not chain")
    if offsets.shape != (weight.shape[0],):
        raise ValueError(f"offsets {tuple(offsets.shape)} needs one entry per expert")
    ends = offsets.tolist()
    if ends and ends[-1] != x.shape[0]:
        raise ValueError(f"offsets end at {ends[-1]} but x has {x.shape[0]} rows")
    outputs = []
    start = 0
    for expert, end in enumerate(ends):
        outputs.append(x[start:end] @ weight[expert])  # (n_e, N)
        start = end
    if not outputs:
        return x.new_zeros(0, weight.shape[2])
    return torch.cat(outputs, 0)
