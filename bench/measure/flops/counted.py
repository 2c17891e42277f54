"""The counted FLOPs: what actually ran, under `FlopCounterMode` plus our formulas.

`torch.utils.flop_counter.FlopCounterMode` counts mm/addmm/bmm/baddbmm/conv/CUDA attention, but
in torch 2.13 it silently counts 0 for `aten._grouped_mm` and for the CPU attention kernels; the
formulas in `FORMULAS` fill those gaps. A recording dispatch mode under the counter sees every
leaf op that ran, so `count_flops` names any matmul-like op without a formula (`unformulated`)
and, when strict, raises `MissingFlopFormula` instead of reporting a silent zero.
2 FLOPs per multiply-add, matmul-like ops only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils.flop_counter as fc
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Pieces of an op name (split on "_") that make it matmul-like.
_MATMUL_PIECES = frozenset(
    {"mm", "bmm", "addmm", "addbmm", "baddbmm", "addmv", "mv", "dot", "vdot", "matmul"}
    | {"linear", "einsum", "tensordot", "convolution", "conv1d", "conv2d", "conv3d"}
)


def grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """`aten._grouped_mm(a, b, offs)` in its four operand forms (groups never overlap, so the
    FLOPs are those of one GEMM over the whole jagged dimension):
    2D (M, K) x 3D (G, K, N): rows split by offs      -> 2 M K N
    2D (M, K) x 2D (K, N): K split by offs (weight grad, output (G, M, N)) -> 2 M K N
    3D (G, M, K) x 2D (K, N): N split by offs         -> 2 M K N
    3D (G, M, K) x 3D (G, K, N): batched              -> 2 G M K N
    """
    if len(a_shape) == 2 and len(b_shape) == 3:
        return 2 * a_shape[0] * a_shape[1] * b_shape[2]
    if len(a_shape) == 2 and len(b_shape) == 2:
        return 2 * a_shape[0] * a_shape[1] * b_shape[1]
    if len(a_shape) == 3 and len(b_shape) == 2:
        return 2 * a_shape[1] * a_shape[2] * b_shape[1]
    if len(a_shape) == 3 and len(b_shape) == 3:
        return 2 * a_shape[0] * a_shape[1] * a_shape[2] * b_shape[2]
    raise ValueError(f"_grouped_mm with operand shapes {a_shape} x {b_shape} has no formula")


def _sdpa_cpu_flop(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """CPU flash attention forward: scores (L x S) and values, over every query and key."""
    return fc.sdpa_flop_count(q_shape, k_shape, v_shape)


def _sdpa_cpu_backward_flop(grad_shape, q_shape, k_shape, v_shape, *args, out_shape=None, **kw):
    """CPU flash attention backward: recomputed scores plus the four gradient GEMMs."""
    return fc.sdpa_backward_flop_count(grad_shape, q_shape, k_shape, v_shape)


# Ops FlopCounterMode misses in torch 2.13 (it counts them as 0); keys are overload packets.
FORMULAS: dict[Any, Callable[..., int]] = {
    aten._grouped_mm: grouped_mm_flop,
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flop,
}


class MissingFlopFormula(RuntimeError):
    """A matmul-like op ran that no formula counts (it would have been a silent zero)."""


def is_matmul_like(packet: Any) -> bool:
    """True for ops that multiply matrices (and for any non-aten op: custom kernels must say
    what they cost, even if it is 0)."""
    namespace, _, name = str(packet).partition(".")
    if namespace == "profiler":  # record_function range markers
        return False
    if namespace not in ("aten", "prim"):
        return True
    pieces = [p for p in name.split("_") if p]
    return (
        any(p in _MATMUL_PIECES for p in pieces)
        or "attention" in name
        or any(p.startswith("fft") for p in pieces)
    )


class _OpRecorder(TorchDispatchMode):
    """Records the overload packet of every op that reaches it (the leaf ops that execute)."""

    def __init__(self) -> None:
        super().__init__()
        self.packets: set[Any] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.packets.add(func._overloadpacket)
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class FlopCount:
    """total: FLOPs counted; by_op: per op name; unformulated: matmul-like ops that ran
    without a formula (their FLOPs are missing from total)."""

    total: int
    by_op: Mapping[str, int]
    unformulated: tuple[str, ...]


def count_flops(
    fn: Callable[[], Any],
    *,
    formulas: Mapping[Any, Callable[..., int]] | None = None,
    strict: bool = True,
) -> FlopCount:
    """Run `fn()` under FlopCounterMode with FORMULAS (plus `formulas`) and count its FLOPs.

    strict: raise MissingFlopFormula when a matmul-like op ran without a formula.
    """
    recorder = _OpRecorder()
    counter = fc.FlopCounterMode(display=False, custom_mapping={**FORMULAS, **(formulas or {})})
    # The recorder is entered first, so it sits under the counter and sees the leaf ops the
    # counter executes (after it has decomposed what it has no formula for).
    with recorder, counter:
        fn()
    known = set(counter.flop_registry)
    missing = tuple(
        sorted(str(p) for p in recorder.packets if is_matmul_like(p) and p not in known)
    )
    if strict and missing:
        raise MissingFlopFormula(
            f"matmul-like ops ran without a FLOP formula: {', '.join(missing)}; add one to "
            "bench.measure.flops.counted.FORMULAS (2 FLOPs per multiply-add; 0 if it multiplies "
            "nothing)"
        )
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCount(int(counter.get_total_flops()), by_op, missing)
