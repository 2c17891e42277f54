"""The contract between the encoder and its swappable parts (token mixers and feed-forward parts).

A part is an `nn.Module` that satisfies `Part`:

- `forward(x (B, L, D), mask (B, L) bool, True = real token) -> (y (B, L, D), PartAux)`.
  Dense parts return `NO_AUX`; routed parts put there their weighted auxiliary loss, their
  routing statistics and the `sizes` their routing decided (rows each expert GEMM multiplied,
  slots per expert row, tokens routed).
- `analytic_flops(x_shape, aux) -> {component: FLOPs}`: the forward FLOPs of ONE call, from its
  input shape and the aux that call returned, and nothing else (no state is kept between
  forward and count, so a part called twice, or counted for another batch, answers for the call
  it is given). 2 FLOPs per multiply-add, matmul-like ops only. A part without a closed-form
  count raises `NoAnalyticFlops` saying why; the measurement then records the part as lacking
  a formula instead of a figure.
- `phases`: the profiler ranges (`models.layers.ranges`) its forward emits, in order.

A part may be made of parts (`models.layers.composite.CompositePart`: a shared expert beside
routed experts): its aux keeps each child's under `children`, and the framework merges the
losses and statistics, sums the children's FLOP formulas and reports every child's kernel.

The training loop and the measurements need no model-specific code beyond this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import torch

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class PartAux:
    """What a part reports besides its output.

    loss: a scalar already multiplied by its weight, added to the task loss; None if none.
    stats: routing statistics (tokens per expert, load, dropped fraction, ...) as tensors.
    sizes: counts the routing of this call decided, read by `analytic_flops` (ints, or 0-dim
        integer tensors so the forward needs no host sync to report them).
    kernel: the grouped-GEMM implementation this call ran (`models.kernels.dispatch.choose`),
        "" for a part without one; recorded per cell (`gemm_kernels`), so no path is silent.
    children: a composite part's children's aux, by child name (their sizes and kernels stay
        there; `models.layers.composite`); empty for a plain part.
    """

    loss: torch.Tensor | None = None
    stats: Mapping[str, torch.Tensor] = field(default_factory=lambda: _EMPTY)
    sizes: Mapping[str, int | torch.Tensor] = field(default_factory=lambda: _EMPTY)
    kernel: str = ""
    children: Mapping[str, PartAux] = field(default_factory=lambda: _EMPTY)


NO_AUX = PartAux()


class NoAnalyticFlops(NotImplementedError):
    """Raised by `analytic_flops` of a part that has no closed-form FLOP count (say why)."""


@runtime_checkable
class Part(Protocol):
    """A token mixer or feed-forward part (module doc)."""

    phases: tuple[str, ...]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]: ...

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]: ...


def check_part(module: object, slot: str) -> None:
    """Raise TypeError naming what is missing unless `module` satisfies `Part`."""
    if not isinstance(module, Part):
        lacking = [n for n in ("phases", "forward", "analytic_flops") if not hasattr(module, n)]
        raise TypeError(
            f"the {slot} part {type(module).__name__} lacks {', '.join(lacking)}: a part "
            "implements forward(x, mask) -> (y, PartAux), analytic_flops(x_shape, aux) and "
            "phases (models/layers/parts.py)"
        )


def size(aux: PartAux, name: str) -> int:
    """One of `aux.sizes` as a Python int, with a clear error when the forward did not report it."""
    if name not in aux.sizes:
        raise KeyError(f"the part's aux reports no size {name!r}; it has {sorted(aux.sizes)}")
    return int(aux.sizes[name])


def kernel_paths(aux: PartAux, prefix: str = "") -> dict[str, str]:
    """The grouped-GEMM kernel of the call that returned `aux` and of each of its children's
    calls, at any depth: {dotted path: kernel}, the path of a child being `prefix.child` (its
    module name, as `CompositePart` registers children), parts without a kernel left out."""
    found = {prefix: aux.kernel} if aux.kernel else {}
    for name, child in aux.children.items():
        found.update(kernel_paths(child, f"{prefix}.{name}" if prefix else name))
    return found


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) int lengths -> (B, max_len) bool mask, True at real tokens."""
    positions = torch.arange(max_len, device=lengths.device)  # (L,)
    return positions[None, :] < lengths[:, None]  # (B, L)
