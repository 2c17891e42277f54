"""The FLOPs calflops 0.3.2 (the counter of the UoE paper's FLOP figures) reports for a forward.

calflops counts by replacing attributes: for the length of a forward, `torch.nn.functional`'s
linear, convolutions, activations (relu, prelu, elu, leaky_relu, relu6, silu, gelu), norms
(batch, layer, instance, group), poolings, upsample/interpolate, softmax and embedding, and
`torch.matmul`, `torch.addmm`, `torch.baddbmm`, `torch.einsum`, `torch.mul`, `torch.add` and the
`Tensor` methods matmul, addmm, mul, add, are wrapped by a function that adds that call's FLOPs.
So whatever looks one of those names up at call time is counted (an `nn.Linear`, `x.matmul(w)`,
`torch.baddbmm(...)`, `F.softmax(s)`), and nothing else is: not `x @ w`, `x * y`, `x + y`,
`torch.mm`, `torch.bmm`, `s.softmax(-1)`, `F.rms_norm`, SDPA or `aten._grouped_mm`. The figure
therefore depends on how a model is written as much as on what it computes: the released UoE's
experts (`baddbmm`) and attention (`matmul`) count, our grouped-GEMM experts and SDPA do not.

`CalflopsCounter` replaces the same attributes in the same way for the length of a `with`
block, with formulas that follow calflops' (`pytorch_ops.py`), quirks included: a multiply-add
is 2 FLOPs but an elementwise op, activation, softmax or pooling is 1 per element, a norm 4 or
5 per element, biases of addmm/baddbmm count, and `mul`/`add` take the size of the two shapes
aligned from their FIRST dimension (not numpy broadcasting). calflops only counts calls made
inside a module's forward; a counter around a model call sees the same calls.
tests/test_measure_flops.py checks the figure against calflops itself on registered models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _elements(x: Any) -> int:
    return x.numel()


def _linear(input, weight, bias=None) -> int:
    return 2 * input.numel() * weight.shape[0]


def _per_element(input, *args, **kwargs) -> int:
    """Activations, poolings and softmax: one FLOP per input element."""
    return input.numel()


def _nothing(*args, **kwargs) -> int:
    return 0


def _norm(input, *args, weight=None, **kwargs) -> int:
    """Layer, group and instance norm: 4 FLOPs per element, 5 with an affine weight."""
    return input.numel() * (5 if weight is not None else 4)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) -> int:
    return _norm(input, weight=weight)


def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-5) -> int:
    return _norm(input, weight=weight)


def _instance_norm(input, running_mean=None, running_var=None, weight=None, *args, **kwargs):
    return _norm(input, weight=weight)


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, *a, **k):
    affine = weight is not None
    if training:
        return input.numel() * (5 if affine else 4)
    return input.numel() * (2 if affine else 1)


def _tuple(value: Any, length: int) -> tuple:
    return value if isinstance(value, tuple) else (value,) * length


def _conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> int:
    """2 x output positions x kernel volume x in channels x out channels per group, + bias."""
    kernel, spatial = list(weight.shape[2:]), list(input.shape[2:])
    n = len(spatial)
    strides, dilations = _tuple(stride, n), _tuple(dilation, n)
    if padding == "valid":
        pads: tuple = (0,) * n
    elif padding == "same":
        pads = tuple(d * (k - 1) // 2 for d, k in zip(dilations, kernel, strict=False))
    else:
        pads = _tuple(padding, n)
    out = [
        (size + 2 * pads[i] - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1
        for i, size in enumerate(spatial)
    ]
    positions = input.shape[0] * math.prod(out)
    macs = math.prod(kernel) * input.shape[1] * (weight.shape[0] // groups) * positions
    return int(2 * macs + (weight.shape[0] * positions if bias is not None else 0))


def _conv_transpose(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> int:
    """As calflops: the multiply-adds over the INPUT positions, the bias over the output
    positions computed with the forward-convolution formula."""
    kernel, spatial = list(weight.shape[2:]), list(input.shape[2:])
    n = len(spatial)
    pads, strides, dilations = _tuple(padding, n), _tuple(stride, n), _tuple(dilation, n)
    out = [
        (size + 2 * pads[i] - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1
        for i, size in enumerate(spatial)
    ]
    macs = math.prod(kernel) * input.shape[1] * (weight.shape[1] // groups)
    macs *= input.shape[0] * math.prod(spatial)
    bias_flops = weight.shape[1] * input.shape[0] * math.prod(out) if bias is not None else 0
    return int(2 * macs + bias_flops)


def _upsample(input, size=None, scale_factor=None, *args, **kwargs) -> int:
    """The output size's element count when a size is given, else the input's (calflops scales
    by nothing: its scale-factor product is computed and dropped)."""
    if size is not None:
        return int(math.prod(size)) if isinstance(size, tuple | list) else int(size)
    if scale_factor is None:
        raise ValueError("interpolate needs a size or a scale_factor")
    return input.numel()


def _matmul(input, other, *, out=None) -> int:
    return 2 * input.numel() * other.shape[-1]


def _addmm(input, mat1, mat2, *, beta=1, alpha=1, out=None) -> int:
    """addmm, Tensor.addmm and baddbmm: 2 x the product's multiply-adds + the added tensor."""
    return 2 * mat1.numel() * mat2.shape[-1] + input.numel()


def _elementwise(input, other, *args, **kwargs) -> int:
    """mul and add: a scalar with a scalar is 1, a tensor with a scalar its size; two tensors
    the product over positions i of max(size_a[i], size_b[i]), the shapes aligned from their
    first dimension and the shorter padded with 1s at the end (calflops' rule)."""
    if not torch.is_tensor(input):
        return other.numel() if torch.is_tensor(other) else 1
    if not torch.is_tensor(other):
        return input.numel()
    a, b = list(input.shape), list(other.shape)
    rank = max(len(a), len(b))
    a, b = a + [1] * (rank - len(a)), b + [1] * (rank - len(b))
    return math.prod(max(x, y) for x, y in zip(a, b, strict=True))


def _einsum(equation: str, *operands: torch.Tensor) -> int:
    """numpy's count for the optimal contraction path, read from `einsum_path`'s report as
    calflops reads it (4 significant digits)."""
    shapes = [np.broadcast_to(np.zeros((), dtype=np.float32), tuple(o.shape)) for o in operands]
    report = np.einsum_path(equation.replace(" ", ""), *shapes, optimize="optimal")[1]
    for line in report.split("\n"):
        if "optimized flop" in line.lower():
            return int(float(line.split(":")[-1]))
    raise ValueError(f"numpy's einsum_path gave no FLOP count for {equation!r}")


# (owner, attribute name, formula): every attribute calflops 0.3.2 replaces, in its order.
_F_TARGETS: Sequence[tuple[str, Callable[..., int]]] = (
    ("linear", _linear),
    *((f"conv{n}d", _conv) for n in (1, 2, 3)),
    *((f"conv_transpose{n}d", _conv_transpose) for n in (1, 2, 3)),
    *((name, _per_element) for name in ("relu", "prelu", "elu", "leaky_relu", "relu6")),
    ("silu", _per_element),
    ("gelu", _per_element),
    ("batch_norm", _batch_norm),
    ("layer_norm", _layer_norm),
    ("instance_norm", _instance_norm),
    ("group_norm", _group_norm),
    *(
        (f"{kind}_pool{n}d", _per_element)
        for kind in ("avg", "max", "adaptive_avg", "adaptive_max")
        for n in (1, 2, 3)
    ),
    ("upsample", _upsample),
    ("interpolate", _upsample),
    ("softmax", _per_element),
    ("embedding", _nothing),
)
_TORCH_TARGETS: Sequence[tuple[str, Callable[..., int]]] = (
    ("matmul", _matmul),
    ("addmm", _addmm),
    ("mul", _elementwise),
    ("add", _elementwise),
    ("einsum", _einsum),
    ("baddbmm", _addmm),
)
_TENSOR_TARGETS: Sequence[tuple[str, Callable[..., int]]] = (
    ("matmul", _matmul),
    ("addmm", _addmm),
    ("mul", _elementwise),
    ("add", _elementwise),
)
TARGETS: tuple[tuple[Any, str, Callable[..., int]], ...] = (
    *((F, name, formula) for name, formula in _F_TARGETS),
    *((torch, name, formula) for name, formula in _TORCH_TARGETS),
    *((torch.Tensor, name, formula) for name, formula in _TENSOR_TARGETS),
)


class CalflopsCounter:
    """`with CalflopsCounter() as c: model(...)` -> `c.flops`, what calflops 0.3.2 reports as the
    forward FLOPs of the calls made inside (module doc); `c.by_function` splits it by name
    ("F.linear", "torch.baddbmm", "Tensor.matmul", ...). The replaced attributes are put back
    on exit, whatever happens; counters do not nest (the second would count every call twice)."""

    _active = False

    def __init__(self) -> None:
        self.flops = 0
        self.by_function: dict[str, int] = {}
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> CalflopsCounter:
        if CalflopsCounter._active:
            raise RuntimeError("a CalflopsCounter is already counting; they do not nest")
        CalflopsCounter._active = True
        for owner, name, formula in TARGETS:
            original = getattr(owner, name)
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(original, formula, _label(owner, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()
        CalflopsCounter._active = False

    def _wrap(self, original: Callable, formula: Callable[..., int], label: str) -> Callable:
        def counted(*args: Any, **kwargs: Any) -> Any:
            flops = int(formula(*args, **kwargs))
            self.flops += flops
            self.by_function[label] = self.by_function.get(label, 0) + flops
            return original(*args, **kwargs)

        return counted


def _label(owner: Any, name: str) -> str:
    prefix = {id(F): "F", id(torch): "torch", id(torch.Tensor): "Tensor"}[id(owner)]
    return f"{prefix}.{name}"
