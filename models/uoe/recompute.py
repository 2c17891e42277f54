"""Activations the backward makes again instead of keeping: UoE's memory diet.

A training step keeps, for the backward, every tensor an op saves. UoE's expert GEMMs save their
input rows, which follow from tensors kept anyway: the gathered tokens (`permute(x)`; x is saved
by the router's gate), the heads' outputs (a gather of the attention output, saved by SDPA) and
their gate-scaled copy, UoME's GELU output (GELU keeps its input) and its gate-scaled copy.
Inside `recomputed(...)`, a saved tensor that is one of the given tensors is stored as the
recipe that makes it (a gather, an elementwise GELU or product) and made again when the
backward reads it: the same ops on the same values, so every gradient is unchanged, for a few
cheap ops and no matmul (the FLOP counts do not move). The part frees its own reference as soon
as the GEMM has run, so the tensor is gone until the backward."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


def _identity(t: torch.Tensor) -> tuple:
    """What names a tensor's values in memory (autograd may hand the hook another Python object
    for a saved tensor): storage, offset, shape, strides, dtype."""
    return (t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride(), t.dtype)


class _Recipe:
    """What a saved tensor becomes: the function that makes it again."""

    def __init__(self, make: Callable[[], torch.Tensor]) -> None:
        self.make = make


@contextmanager
def recomputed(*recipes: tuple[torch.Tensor, Callable[[], torch.Tensor]]) -> Iterator[None]:
    """While active, an op that saves one of the `recipes`' tensors saves its `make` instead
    (which must return the same values from tensors kept anyway, never the tensor itself);
    under no_grad nothing is saved and this does nothing."""

    # Identities, not the tensors: autograd may keep the hooks as long as the graph, and a
    # hook holding a tensor would keep it alive, the very thing this avoids.
    makers = {_identity(tensor): make for tensor, make in recipes}
    del recipes

    def pack(t: torch.Tensor) -> torch.Tensor | _Recipe:
        make = makers.get(_identity(t))
        return t if make is None else _Recipe(make)

    def unpack(saved: torch.Tensor | _Recipe) -> torch.Tensor:
        return saved.make() if isinstance(saved, _Recipe) else saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
