"""The fvcore cross-check: an independent tracer's count of one forward, as 2 x its MACs.

fvcore traces the model and counts one per multiply-add; `fvcore_flops` registers handles for
the ops it misses or miscounts (SDPA, broadcast matmul, einsum, our grouped-GEMM autograd
Functions) and returns 2 x its MACs, comparable with the counted figure, plus the ops it left
uncounted. A disagreement is recorded beside the counted figure (`bench.measure.cell`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.measure.flops.counted import grouped_mm_flop
from bench.measure.quiet import import_fvcore_nn


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
    return grouped_mm_flop(_shape(inputs[0]), _shape(inputs[1])) // 2


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
