"""Picks the grouped-GEMM implementation by device, dtype and shape.

Only the reference loop exists so far; the fast CPU path and the Triton path plug in here
without any change to the MoE layers that call `grouped_mm`.
"""

from __future__ import annotations

import torch

from models.kernels.reference import grouped_mm_loop

IMPLEMENTATIONS = {"loop": grouped_mm_loop}


def grouped_mm(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, *, impl: str | None = None
) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) int32 -> (A, N).

    `impl` forces one implementation by name (tests and benchmarks); None picks one.
    """
    name = impl or "loop"
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown grouped_mm impl {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[name](x, weight, offsets)
