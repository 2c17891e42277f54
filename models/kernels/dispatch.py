"""Picks the grouped-GEMM implementation by device, dtype and shape.

Implementations (all with input and weight gradients, all equal to `loop` in the tests):

    loop    reference.grouped_mm_loop: autograd through per-expert slices; the ground truth
    mm      cpu.grouped_mm_mm: per-expert `torch.mm(out=)` with a hand-written backward
    torch   cpu.grouped_mm_torch: `torch._grouped_mm` (CPU: a C++ loop of mm; CUDA: CUTLASS)
    bmm     cpu.grouped_mm_bmm: zero-padded (E, max_rows, K) batched matmul
    triton  triton_gmm.grouped_mm_triton: Triton kernels, CUDA (or the interpreter)

Policy (`choose`), from measurements on the 2-core AVX512 CI CPU (torch 2.13.0+cpu, fp32,
d 512, hidden 2048; up+down GEMMs; `python -m tests.benchmarks.grouped_mm_table`):

- CPU -> `mm`. Forward, all four candidates run the same per-expert GEMMs, so they tie within
  noise (T 4096, E 64, k 1: mm 0.55, torch 0.55, bmm 0.48, loop 0.53 of a dense matmul's
  FLOP/s); what separates them is the backward and the copies. The reference loop's backward
  writes each expert's dW through a full-size (E, K, N) zero tensor (SelectBackward), so at E=64
  it costs E x the weight bytes: mm is 5-9x faster fwd+bwd there. `torch._grouped_mm` matches mm
  when balanced but was up to 3x slower at E 64, k 2 (its CPU weight-gradient form is slower) and
  refuses fp64 and unaligned K/N. `bmm` multiplies E * max_rows rows, so any imbalance is paid in
  full, plus two scatter copies. Neither wins any measured shape, so the CPU policy is one path.
  Neither reaches 0.75 of dense at E 64: each expert's 4 MiB weight is read for only T*k/E rows
  (64 at T 4096, k 1), ~32 FLOP per weight byte, so the GEMMs become memory-bound; dense reads
  the weight once for all rows.
- CUDA, bf16, compute capability >= 9.0, 16-byte aligned K and N -> `torch` (CUTLASS grouped
  kernel, no host sync). Other CUDA cases -> `triton` when triton is installed (torch's own op
  falls back to a host-synced loop there), else `mm`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from models.kernels.cpu import (
    grouped_mm_bmm,
    grouped_mm_mm,
    grouped_mm_torch,
    torch_grouped_unsupported,
)
from models.kernels.reference import grouped_mm_loop

GroupedMm = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _triton(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    if importlib.util.find_spec("triton") is None:
        raise ValueError(
            "grouped_mm impl 'triton' needs the triton package: pip install -e '.[dev]' "
            "(or pip install triton)"
        )
    from models.kernels.triton_gmm import grouped_mm_triton  # imports triton: only when used

    return grouped_mm_triton(x, weight, offsets)


IMPLEMENTATIONS: dict[str, GroupedMm] = {
    "loop": grouped_mm_loop,
    "mm": grouped_mm_mm,
    "torch": grouped_mm_torch,
    "bmm": grouped_mm_bmm,
    "triton": _triton,
}


PAD_LIMIT = 2.0  # CPU: bmm while E * max_rows <= PAD_LIMIT * A (padding waste at most 2x)


def choose(x: torch.Tensor, weight: torch.Tensor, counts: torch.Tensor | None = None) -> str:
    """The implementation `grouped_mm` uses for x (A, K), weight (E, K, N) and the rows per
    expert `counts` (E,) (the policy in the module doc)."""
    if not x.is_cuda:
        if counts is None or counts.numel() == 0:
            return "mm"
        padded_rows = weight.shape[0] * int(counts.max())
        return "bmm" if padded_rows <= PAD_LIMIT * x.shape[0] else "mm"
    major, _minor = torch.cuda.get_device_capability(x.device)
    if x.dtype == torch.bfloat16 and major >= 9 and torch_grouped_unsupported(x, weight) is None:
        return "torch"
    if importlib.util.find_spec("triton") is not None:
        return "triton"
    return "mm"


def multiplied_rows(impl: str, counts: torch.Tensor) -> int:
    """Rows the implementation actually multiplies (bmm pads every expert to the largest)."""
    if impl == "bmm":
        return int(counts.numel() * counts.max()) if counts.numel() else 0
    return int(counts.sum())


def grouped_mm(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, *, impl: str | None = None
) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) int32 -> (A, N).

    `impl` forces one implementation by name (tests and benchmarks); None picks one.
    """
    if impl is None:
        counts = torch.diff(
            offsets.to(torch.int64), prepend=offsets.new_zeros(1, dtype=torch.int64)
        )
        impl = choose(x, weight, counts)
    name = impl
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown grouped_mm impl {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[name](x, weight, offsets)
