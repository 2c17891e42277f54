"""FLOPs: what actually ran (FlopCounterMode plus our formulas), the analytic sum of the parts, the
fvcore cross-check, and the linear-layers-only figure of the UoE paper's convention (calflops).

Convention: 2 FLOPs per multiply-add, matmul-like ops only (no elementwise, softmax, norm, bias).
`torch.utils.flop_counter.FlopCounterMode` counts mm/addmm/bmm/baddbmm/conv/CUDA attention, but
in torch 2.13 it silently counts 0 for `aten._grouped_mm` and for the CPU attention kernels; the
formulas in `FORMULAS` fill those gaps. A recording dispatch mode under the counter sees every
leaf op that ran, so `count_flops` names any matmul-like op without a formula (`unformulated`)
and, when strict, raises `MissingFlopFormula` instead of reporting a silent zero.

fvcore traces the model and counts one per multiply-add; `fvcore_flops` registers handles for
the same ops and returns 2 x its MACs, so it is comparable with ours, plus its unsupported ops.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.flop_counter as fc
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from bench.measure.quiet import import_fvcore_nn
from models.layers.heads import ClassificationHead
from models.layers.parts import NoAnalyticFlops, Part

aten = torch.ops.aten

# Pieces of an op name (split on "_") that make it matmul-like.
_MATMUL_PIECES = frozenset(
    {"mm", "bmm", "addmm", "addbmm", "baddbmm", "addmv", "mv", "dot", "vdot", "matmul"}
    | {"linear", "einsum", "tensordot", "convolution", "conv1d", "conv2d", "conv3d"}
)


def _grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
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
    aten._grouped_mm: _grouped_mm_flop,
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
            "bench.measure.flops.FORMULAS (2 FLOPs per multiply-add; 0 if it multiplies nothing)"
        )
    by_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCount(int(counter.get_total_flops()), by_op, missing)


@dataclass(frozen=True)
class AnalyticFlops:
    """components: summed analytic FLOPs per component name; missing: "module (Type): why" of
    every part that has no formula (then the components undercount and are not a figure);
    kernels: part name -> the grouped-GEMM implementation(s) its calls ran (`PartAux.kernel`,
    routed parts only; several calls that ran different paths are joined with "+")."""

    components: Mapping[str, float]
    missing: tuple[str, ...]
    kernels: Mapping[str, str] = field(default_factory=dict)


def analytic_flops(model: nn.Module, fn: Callable[[], Any]) -> AnalyticFlops:
    """Run `fn()` and add up, for every call of every part (`models.layers.parts.Part`) and of
    the classification head, the FLOPs its `analytic_flops` gives for that call's input shape
    (and, for a part, the aux that call returned). A dual encoder calls each part twice: both
    calls count. Only the outermost counted modules are hooked, so nothing is counted twice.
    """
    totals: dict[str, float] = defaultdict(float)
    missing: dict[str, str] = {}
    kernels: dict[str, list[str]] = defaultdict(list)

    def hook(name: str) -> Callable[[nn.Module, tuple, Any], None]:
        def add(module: nn.Module, args: tuple, output: Any) -> None:
            shape = args[0].shape
            if isinstance(module, Part) and output[1].kernel:
                kernels[name].append(output[1].kernel)
            try:
                counts = (
                    module.analytic_flops(shape, output[1])
                    if isinstance(module, Part)
                    else module.analytic_flops(shape)
                )
            except NoAnalyticFlops as exc:
                missing[name] = f"{name} ({type(module).__name__}): {exc}"
                return
            for component, value in counts.items():
                totals[component] += float(value)

        return add

    hooks = [m.register_forward_hook(hook(n)) for n, m in _outermost_counted(model)]
    try:
        fn()
    finally:
        for handle in hooks:
            handle.remove()
    joined = {name: "+".join(dict.fromkeys(ran)) for name, ran in kernels.items()}
    return AnalyticFlops(dict(totals), tuple(missing.values()), joined)


def _outermost_counted(model: nn.Module) -> list[tuple[str, nn.Module]]:
    found: list[tuple[str, nn.Module]] = []
    prefixes: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(p) for p in prefixes):
            continue
        if isinstance(module, Part | ClassificationHead):
            found.append((name, module))
            prefixes.append(f"{name}." if name else "")
    return found


# ---- the paper's convention: linear layers only ------------------------------------------


class LinearFlopCounter(TorchFunctionMode):
    """FLOPs of the `F.linear` calls (every nn.Linear) that run inside it: 2 x input.numel() x
    out_features per call, bias not counted (calflops' `_linear_flops_compute`).

    This is what calflops reported for our models (the UoE authors' counter, which sees
    F.linear only: not SDPA, the `@` operator, torch.mm or aten._grouped_mm), so the paper's
    FLOP ratios can be set beside ours, which count every matmul.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x = args[0] if args else kwargs["input"]
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.flops += 2 * x.numel() * weight.shape[0]
        return func(*args, **kwargs)


# ---- fvcore cross-check ---------------------------------------------------------------------


@dataclass(frozen=True)
class FvcoreCount:
    """flops = 2 x fvcore's multiply-adds; unsupported: op -> occurrences it counted as 0."""

    flops: int
    unsupported: Mapping[str, int]


def _shape(value: Any) -> list[int]:
    return import_fvcore_nn().jit_handles.get_shape(value)


def _fv_sdpa(inputs: list[Any], outputs: list[Any]) -> int:
    q, k, v = (_shape(x) for x in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])  # MACs of scores + values


def _fv_matmul(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of a (broadcast) matmul: each output element is a dot product over the last
    dimension of the first operand. fvcore's own handle takes the first operand's size times the
    second's last dimension, which drops the batch dimensions the second operand alone has
    (Linformer's E (k, L) @ K (B, H, L, Dh): 1/(B H) of the work)."""
    return math.prod(_shape(outputs[0])) * _shape(inputs[0])[-1]


def _fv_einsum(inputs: list[Any], outputs: list[Any]) -> int:
    """MACs of an einsum as one contraction: the product of the sizes of all its indices. Exact
    for two operands (torch runs them as one bmm); for more it is the unfactored cost, and a
    disagreement with the counted figure shows in the record. fvcore's own handle takes numpy's
    einsum_path estimate, which is not a MAC count (Linformer's "kl,bl->bk": 2 MACs too many)."""
    equation = inputs[0].toIValue().replace(" ", "").split("->")[0]
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    sizes: dict[str, int] = {}
    for term, shape in zip(equation.split(","), shapes, strict=True):
        if "." in term:
            raise ValueError(f"einsum {equation!r}: ellipsis has no MAC count here")
        sizes.update(zip(term, shape, strict=True))
    return math.prod(sizes.values())


def _fv_zero(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


def _fv_grouped_mm(inputs: list[Any], outputs: list[Any]) -> int:
    return _grouped_mm_flop(_shape(inputs[0]), _shape(inputs[1])) // 2


class _Logits(nn.Module):
    """fvcore traces a module with flat tensor inputs and tensor outputs: adapt the classifier."""

    def __init__(self, model: nn.Module, num_inputs: int) -> None:
        super().__init__()
        self.model = model
        self.num_inputs = num_inputs

    def forward(self, *flat: torch.Tensor) -> torch.Tensor:
        n = self.num_inputs
        return self.model(tuple(flat[:n]), tuple(flat[n:])).logits


def fvcore_flops(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], lengths: tuple[torch.Tensor, ...]
) -> FvcoreCount:
    """fvcore's count of one forward of `model(inputs, lengths)`, as 2 x MACs."""
    analysis = import_fvcore_nn().FlopCountAnalysis(
        _Logits(model, len(inputs)), (*inputs, *lengths)
    )
    analysis.set_op_handle(
        **{
            "aten::scaled_dot_product_attention": _fv_sdpa,
            "aten::matmul": _fv_matmul,
            "aten::einsum": _fv_einsum,
            "aten::_grouped_mm": _fv_grouped_mm,
            # Our grouped-GEMM autograd Functions trace as opaque Python ops, (x, weight, offs).
            "prim::PythonOp._GroupedMmLoop": _fv_grouped_mm,
            "prim::PythonOp._TorchGroupedMm": _fv_grouped_mm,
            "prim::PythonOp._TritonGroupedMm": _fv_grouped_mm,
            "prim::PythonOp._ConcurrentGroupedMm": _fv_grouped_mm,
            # permute / unpermute (models/kernels/permute.py): gathers and sums, no matmul.
            "prim::PythonOp._Gather": _fv_zero,
            "prim::PythonOp._SumPerToken": _fv_zero,
            # Our convention counts matmul-like ops only; fvcore's defaults also count norms.
            # (A None handle would not replace a default one: fvcore keeps counting it.)
            "aten::layer_norm": _fv_zero,
            "aten::batch_norm": _fv_zero,
            "aten::group_norm": _fv_zero,
            "aten::instance_norm": _fv_zero,
        }
    )
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return FvcoreCount(round(2 * analysis.total()), dict(analysis.unsupported_ops()))
