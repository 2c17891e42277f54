"""`Dispatch.from_slots` (UoE's sort-free dispatch) against the sorting `Dispatch.build`, and
`take_rows` against plain indexing: same rows, same sums, same gradients."""

from __future__ import annotations

import pytest
import torch

from models.kernels import Dispatch, permute, take_rows, unpermute


def _slot_table(seed: int, experts: int = 3, batch: int = 4, length: int = 7, slots: int = 5):
    """A UoE-like (E, B C) table: each (expert, sequence) row holds distinct positions, some
    slots invalid. Returns token_of_slot (E, B C), valid (E, B C), T."""
    g = torch.Generator().manual_seed(seed)
    positions = torch.stack(
        [
            torch.stack([torch.randperm(length, generator=g)[:slots] for _ in range(batch)])
            for _ in range(experts)
        ]
    )  # (E, B, C), distinct per row
    valid = torch.rand(experts, batch, slots, generator=g) < 0.7
    token = positions + torch.arange(batch)[None, :, None] * length
    return token.reshape(experts, -1), valid.reshape(experts, -1), batch * length


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_from_slots_equals_the_sorting_build(seed: int) -> None:
    token_of_slot, valid, tokens = _slot_table(seed)
    experts = valid.shape[0]
    expert = torch.arange(experts)[:, None].expand_as(valid)
    built = Dispatch.build(
        token_of_slot.reshape(-1), torch.where(valid, expert, -1).reshape(-1), experts, tokens
    )
    fast = Dispatch.from_slots(token_of_slot, valid, tokens)
    fields = ("order", "token_index", "expert_index", "counts", "offsets", "row_of_slot")
    assert fast.slots_per_token == built.slots_per_token
    for name in fields:
        assert torch.equal(getattr(fast, name), getattr(built, name)), name

    x = torch.randn(tokens, 6, requires_grad=True)
    weight = torch.rand(fast.order.shape[0])
    outs = []
    for plan in (built, fast):
        rows = permute(x, plan)  # (A, 6)
        y = unpermute(rows * 1.5, plan, weight)  # (T, 6)
        (grad,) = torch.autograd.grad((y * y).sum(), x)
        outs.append((rows, y, grad))
    for a, b in zip(*outs, strict=True):
        assert torch.equal(a, b)
    # Independent oracle of the sum: a loop over the valid slots, expert-major (row order).
    want, row = torch.zeros(tokens, 6), 0
    for e in range(experts):
        for s in range(valid.shape[1]):
            if valid[e, s]:
                t = int(token_of_slot[e, s])
                want[t] += 1.5 * float(weight[row]) * x.detach()[t]
                row += 1
    torch.testing.assert_close(outs[1][1], want)


def test_from_slots_with_no_valid_slot_returns_zeros() -> None:
    token_of_slot, valid, tokens = _slot_table(0)
    plan = Dispatch.from_slots(token_of_slot, torch.zeros_like(valid), tokens)
    assert plan.order.numel() == 0 and plan.counts.tolist() == [0, 0, 0]
    x = torch.randn(tokens, 4)
    assert torch.equal(unpermute(permute(x, plan), plan), torch.zeros(tokens, 4))


def test_take_rows_matches_indexing_forward_and_backward() -> None:
    values = torch.randn(9, 3, requires_grad=True)
    index = torch.tensor([7, 2, 4, 0])  # distinct
    upstream = torch.randn(4, 3)
    (want,) = torch.autograd.grad((values[index] * upstream).sum(), values)
    taken = take_rows(values, index)
    (got,) = torch.autograd.grad((taken * upstream).sum(), values)
    assert torch.equal(taken, values[index])
    assert torch.equal(got, want)
    assert torch.equal(got[[1, 3, 5, 6, 8]], torch.zeros(5, 3))  # rows not taken get zero
