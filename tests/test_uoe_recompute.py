"""`models.uoe.recompute`: a tensor made again in the backward gives the very gradients of the
tensor kept, and autograd keeps its recipe instead (the recipe runs in the backward)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.uoe.recompute import recomputed


def _step(recompute: bool) -> tuple[list[torch.Tensor], list[str]]:
    """Gradients of a gather -> matmul -> GELU -> matmul chain, and the recipes that ran."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=gen, requires_grad=True)
    w1 = torch.randn(4, 5, generator=gen, requires_grad=True)
    w2 = torch.randn(5, 3, generator=gen, requires_grad=True)
    index = torch.tensor([5, 0, 0, 2, 4, 1, 3, 3])
    ran: list[str] = []

    def again(name: str, make):
        def run() -> torch.Tensor:
            ran.append(name)
            return make()

        return run

    rows = x.index_select(0, index)  # (8, 4)
    recipe = (rows, again("rows", lambda: x.index_select(0, index)))
    with recomputed(*([recipe] if recompute else [])):
        pre = rows @ w1  # (8, 5)
    act = F.gelu(pre)
    recipe = (act, again("gelu", lambda: F.gelu(pre)))
    with recomputed(*([recipe] if recompute else [])):
        out = act @ w2  # (8, 3)
    assert ran == []  # nothing is made again in the forward
    loss = (out.square().sum(-1) * x.sum(-1).index_select(0, index)).sum()
    return list(torch.autograd.grad(loss, [x, w1, w2])), ran


def test_recomputed_tensors_give_the_same_gradients_and_are_made_in_the_backward() -> None:
    plain, ran_plain = _step(recompute=False)
    lean, ran_lean = _step(recompute=True)
    for a, b in zip(plain, lean, strict=True):
        assert torch.equal(a, b)
    assert ran_plain == []
    assert sorted(ran_lean) == ["gelu", "rows"]
