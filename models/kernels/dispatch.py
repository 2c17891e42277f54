"""Picks the grouped-GEMM implementation by device, dtype and shape.

Implementations (all with input and weight gradients, all equal to `loop` in the tests):

    loop    reference.grouped_mm_loop: autograd through per-expert slices; the ground truth
    mm      cpu.grouped_mm_mm: per-expert `torch.mm(out=)` with a hand-written backward
    torch   cpu.grouped_mm_torch: `torch._grouped_mm` (CPU: a C++ loop of mm; CUDA: CUTLASS)
    bmm     cpu.grouped_mm_bmm: zero-padded (E, max_rows, K) batched matmul
    mm_concurrent  concurrent.grouped_mm_concurrent: the `mm` products, experts split into one
            group per intra-op thread, each group on its own thread with single-threaded GEMMs
    triton  triton_gmm.grouped_mm_triton: Triton kernels, CUDA (or the interpreter)

Policy (`choose`), from measurements on the 2-core AVX512 CPU this was built on (torch
2.13.0+cpu, fp32, 2 threads, every path timed interleaved in one process;
`python -m tests.benchmarks.grouped_mm_table --quick` prints the table). Ratio of throughput to
a dense matmul doing the same FLOPs, d 512, hidden 2048, T 4096, on a QUIET machine:

    shape               loop   mm     torch  bmm
    E 8  k 2 fwd        0.92   0.95   0.97   0.71
    E 8  k 2 fwd+bwd    0.61   0.87   0.87   0.69
    E 64 k 1 fwd        0.52   0.53   0.64   0.59
    E 64 k 2 fwd        0.79   0.78   0.78   0.60
    E 64 k 1 fwd+bwd    0.02   0.46   0.46   0.43
    E 64 k 2 fwd+bwd    0.05   0.66   0.67   0.56

and at the harness's own LRA shapes (d 32-64, expert width 16-128, E 2-4), fwd+bwd, `torch` and
`mm` take 0.35-0.6x the time of `bmm`.

- CPU -> `torch` where `torch._grouped_mm` takes the operands (fp32/bf16/fp16, 16-byte aligned
  K and N; on CPU it is a C++ loop of mm, a few % to 20 % faster than ours on small shapes for
  less Python per expert), else `mm`. Padded `bmm` multiplies E * max_rows rows (1.3-1.5x the
  useful ones for random routing, up to E x for a skewed load) and loses at every shape on a
  quiet machine. (Under heavy contention, load 10-19 on 2 cores, `bmm` won by 2-3x: each of the
  E small GEMMs of the per-expert paths is its own parallel region whose thread barrier stalls
  when the cores are shared. We optimise for the machine a benchmark is meant to run on.)
  `mm` beats the reference `loop` most in the backward: the loop's autograd writes each expert's
  dW through a full-size (E, K, N) zero tensor (SelectBackward), E x the weight bytes per GEMM.
  No path reaches 0.75 of dense in every E 64 case: each expert's 4 MiB weight serves only
  ~64-128 rows (~32-64 FLOP per weight byte), memory-bound, where dense reads one weight for
  all rows.
- CPU, given the call's row count A (`choose(weight, rows=A)`, what the MoE parts do; A is a
  shape, no host sync): `mm_concurrent` when the experts average at most
  CONCURRENT_MAX_ROWS_PER_EXPERT (256) rows, each expert's weight has at least
  CONCURRENT_MIN_WEIGHT_ELEMENTS (2^18) elements, there are >= 2 experts and >= 2 intra-op
  threads; otherwise the rule above. Why: a per-expert GEMM of a few hundred rows is too small
  to keep two cores busy (issue 17's profile: 387 small `mm` calls per step, each its own
  parallel region, `aten::mm` 91 % of self time at E 64), so whole experts side by side, one
  core each, beat threading each small product; but at tiny widths the thread hand-off costs
  more than the products. Measured on a quiet 2-core AVX2 machine (load 1.0-1.9, interleaved,
  5 rounds; results/benchmarks/grouped_mm_goal.md and grouped_mm_lra.md), `mm_concurrent`
  against `torch`: d 512, h 1024-2048, T 4096, E 64 (64-128 rows per expert) 1.04-1.19x
  fwd and fwd+bwd; E 8 k 1 (512 rows) 0.88x; at the LRA shapes (d 32-64, widths 16-32,
  E 2-4) 0.4-0.55x. Every routed part (MoE and UoE) passes its row count and reports the
  path that ran (`PartAux.kernel`, recorded per cell as `gemm_kernels`); without `rows` (the
  manifest, before any forward) `describe` gives the policy as one line.
- CUDA, bf16, compute capability >= 9.0, 16-byte aligned K and N -> `torch` (CUTLASS grouped
  kernel, no host sync). Other CUDA cases -> `triton` when triton is installed (torch's own op
  falls back to a host-synced loop there), else `mm`.

That rule (`rule_choice`) is the fallback. The measured policy is an `autotune.Autotuner`
installed with `use_tuner` (the application does so per run, with its table cached on disk):
then a call that gives its rows takes the path timed fastest for its shape class on this
machine (`candidates` lists the paths timed, the rule's choice first). Without a tuner, or
without `rows`, the rule decides.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import torch

from models.kernels.autotune import Autotuner, ShapeClass, wall_seconds
from models.kernels.concurrent import grouped_mm_concurrent
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
            "grouped_mm impl 'triton' needs the triton package: pip install -e '.[gpu]' "
            "(or pip install triton)"
        )
    from models.kernels.triton_gmm import grouped_mm_triton  # imports triton: only when used

    return grouped_mm_triton(x, weight, offsets)


IMPLEMENTATIONS: dict[str, GroupedMm] = {
    "loop": grouped_mm_loop,
    "mm": grouped_mm_mm,
    "torch": grouped_mm_torch,
    "bmm": grouped_mm_bmm,
    "mm_concurrent": grouped_mm_concurrent,
    "triton": _triton,
}


# The concurrent CPU path runs when an expert averages at most this many rows and its weight
# holds at least this many elements (module doc: measured on a quiet 2-core machine).
CONCURRENT_MAX_ROWS_PER_EXPERT = 256
CONCURRENT_MIN_WEIGHT_ELEMENTS = 1 << 18  # K x N per expert, e.g. 512 x 512


_tuner: Autotuner | None = None


def use_tuner(tuner: Autotuner | None) -> Autotuner | None:
    """Make `tuner` the process's measured policy (None: the rule); returns the previous one."""
    global _tuner
    previous, _tuner = _tuner, tuner
    return previous


def active_tuner() -> Autotuner | None:
    return _tuner


def choose(weight: torch.Tensor, rows: int | None = None) -> str:
    """The implementation for rows x (A, K) times weight (E, K, N): the installed tuner's
    measured choice for the call's shape class when there is a tuner for this device and
    `rows` is given, else the rule (`rule_choice`). A tuner made at another intra-op thread
    count is refused (its timings do not hold here)."""
    tuner = _tuner
    if tuner is None or rows is None or weight.is_cuda != (tuner.table.machine.device != "cpu"):
        return rule_choice(weight, rows)
    threads = torch.get_num_threads()
    if tuner.table.machine.threads != threads:
        raise RuntimeError(
            f"the grouped_mm tuner was made for {tuner.table.machine.threads} threads but "
            f"torch now runs {threads}; install a tuner after torch.set_num_threads"
        )
    return tuner.choose(weight, rows)


def candidates(weight: torch.Tensor, rows: int) -> tuple[str, ...]:
    """The paths an autotune times for this weight, the rule's choice first: every path that
    can run it except the reference loop (`mm_concurrent` only with 2 or more threads and
    experts, where it differs from `mm`; `triton` only on CUDA with triton installed)."""
    fits_torch_op = torch_grouped_unsupported(weight) is None
    if weight.is_cuda:
        paths = ["torch"] if fits_torch_op else []
        if importlib.util.find_spec("triton") is not None:
            paths.append("triton")
        paths += ["mm", "bmm"]
    else:
        paths = ["torch"] if fits_torch_op else []
        paths.append("mm")
        if weight.shape[0] >= 2 and torch.get_num_threads() >= 2:
            paths.append("mm_concurrent")
        paths.append("bmm")
    first = rule_choice(weight, rows)
    return (first, *[p for p in paths if p != first])


def rule_choice(weight: torch.Tensor, rows: int | None = None) -> str:
    """The implementation `grouped_mm` uses for rows x (A, K) times weight (E, K, N), by the
    fixed rule in the module doc. Without `rows` it depends on device, dtype and shape, not on the
    routing (x always has the weight's device and dtype: every path checks), so a part knows
    its kernel before any forward. With `rows` = A of this call, a CPU call whose experts
    average at most CONCURRENT_MAX_ROWS_PER_EXPERT rows, each weight at least
    CONCURRENT_MIN_WEIGHT_ELEMENTS, with 2 or more intra-op threads and 2 or more experts,
    takes `mm_concurrent` (A is a shape: no host sync). The caller reports the name it got
    (`PartAux.kernel`)."""
    fits_torch_op = torch_grouped_unsupported(weight) is None
    if not weight.is_cuda:
        experts = weight.shape[0]
        if (
            rows is not None
            and experts >= 2
            and torch.get_num_threads() >= 2
            and rows <= CONCURRENT_MAX_ROWS_PER_EXPERT * experts
            and weight.shape[1] * weight.shape[2] >= CONCURRENT_MIN_WEIGHT_ELEMENTS
        ):
            return "mm_concurrent"
        return "torch" if fits_torch_op else "mm"
    major, _minor = torch.cuda.get_device_capability(weight.device)
    if weight.dtype == torch.bfloat16 and major >= 9 and fits_torch_op:
        return "torch"
    if importlib.util.find_spec("triton") is not None:
        return "triton"
    return "mm"


def describe(weight: torch.Tensor) -> str:
    """The policy for this weight as one line, for a record made before any forward (the
    manifest): the static choice, plus the concurrent path's row rule where it can apply; with
    a tuner for this device, that the rows' shape class picks the path."""
    tuner = _tuner
    if tuner is not None and weight.is_cuda == (tuner.table.machine.device != "cpu"):
        return f"autotuned per shape class (table {tuner.table.machine.digest()})"
    static = rule_choice(weight)
    small = weight.shape[1] * weight.shape[2] < CONCURRENT_MIN_WEIGHT_ELEMENTS
    if weight.is_cuda or weight.shape[0] < 2 or torch.get_num_threads() < 2 or small:
        return static
    limit = CONCURRENT_MAX_ROWS_PER_EXPERT
    return f"{static}; mm_concurrent at <= {limit} rows per expert"


def wall_timer(impl: str, cls: ShapeClass) -> float:
    """Seconds of one forward + backward of `impl` on synthetic operands of the class: the
    timer an autotune uses unless a test injects its own."""
    return wall_seconds(grouped_mm, impl, cls)


def multiplied_rows(impl: str, counts: torch.Tensor) -> torch.Tensor:
    """Rows the implementation actually multiplies (bmm pads every expert to the largest), as a
    0-dim tensor: reading it is left to whoever needs the number (no host sync here)."""
    if impl == "bmm":
        return counts.max() * counts.numel() if counts.numel() else counts.sum()
    return counts.sum()


def grouped_mm(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor, *, impl: str | None = None
) -> torch.Tensor:
    """x (A, K) sorted by expert, weight (E, K, N), offsets (E,) int32 -> (A, N).

    `impl` forces one implementation by name (tests and benchmarks); None picks one.
    """
    name = impl or choose(weight)
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown grouped_mm impl {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    return IMPLEMENTATIONS[name](x, weight, offsets)
