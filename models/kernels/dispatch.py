"""Picks the grouped-GEMM implementation by device, dtype and shape.

Implementations (all with input and weight gradients, all equal to `loop` in the tests):

    loop    reference.grouped_mm_loop: autograd through per-expert slices; the ground truth
    mm      cpu.grouped_mm_mm: per-expert `torch.mm(out=)` with a hand-written backward
    torch   cpu.grouped_mm_torch: `torch._grouped_mm` (CPU: a C++ loop of mm; CUDA: CUTLASS)
    bmm     cpu.grouped_mm_bmm: zero-padded (E, max_rows, K) batched matmul
    triton  triton_gmm.grouped_mm_triton: Triton kernels, CUDA (or the interpreter)

Policy (`choose`), from measurements on the 2-core AVX512 CPU this was built on (torch
2.13.0+cpu, fp32, d 512, hidden 2048, up + down GEMMs, top-k of random logits; every path timed
interleaved in one process, median of 5, as a fraction of a dense matmul doing the same FLOPs;
`python -m tests.benchmarks.grouped_mm_table` prints the full table). The machine was shared
with other jobs (load 6-13 on 2 cores), so read the ratios, not the times:

    shape (T=4096)      loop   mm     torch  bmm
    E 64 k 1 fwd        0.18   0.17   0.20   0.49
    E 64 k 2 fwd        0.24   0.29   0.24   0.54
    E 8  k 2 fwd        0.65   0.80   0.82   0.70
    E 64 k 1 fwd+bwd    ~0.02  0.11   0.12   0.40     (loop: one 27 s call vs dense 0.55 s)

- CPU -> `bmm` while padding costs at most PAD_LIMIT x the useful rows, else `mm`. With few
  rows per expert (E 64: 64-128 rows) every per-expert path issues E small GEMMs, each its own
  parallel region whose thread barrier stalls when the cores are shared; one `bmm` call is one
  region and wins by 2-3x despite multiplying E * max_rows rows (~1.3-1.5x the useful ones for
  random routing). With many rows per expert (E 8: 500-1000) the per-expert GEMMs are efficient
  and padding is pure waste, so `mm` is as fast or faster; a skewed load (one hot expert) makes
  padding cost up to E x, hence the limit. `mm` beats the reference `loop` most in the backward:
  the loop's autograd writes each expert's dW through a full-size (E, K, N) zero tensor
  (SelectBackward), E x the weight bytes per GEMM. `torch._grouped_mm` is on CPU a C++ loop of
  mm: it ties with `mm`, and refuses fp64 and unaligned K/N, so it is never picked on CPU.
  No path reaches 0.75 of dense at E 64 here: each expert's 4 MiB weight serves only ~64-128
  rows (~32-64 FLOP per weight byte), memory-bound, where dense reads one weight for all rows.
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
