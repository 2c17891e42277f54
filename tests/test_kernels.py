"""Grouped-GEMM implementations against the reference loop and an fp64 gather-einsum oracle;
permute/unpermute round trips; the dispatcher's choices."""

from __future__ import annotations

import pytest
import torch

from models.kernels import Dispatch, grouped_mm, permute, unpermute
from models.kernels.dispatch import IMPLEMENTATIONS, choose

# Every registered implementation that runs here, the reference loop first; triton needs CUDA or
# its interpreter (tests/test_kernels_triton.py). A newly registered one is tested with no edit.
CPU_IMPLS = ("loop", *(name for name in IMPLEMENTATIONS if name not in ("loop", "triton")))

# (name, tokens, experts, k, forced expert choice or None for random distinct choices)
ROUTINGS = {
    "random": (37, 5, 2, None),
    "empty_experts": (23, 6, 1, lambda t: torch.tensor([0, 3])[torch.arange(t) % 2][:, None]),
    "one_expert_all": (19, 4, 1, lambda t: torch.full((t, 1), 2)),
    "single_expert": (17, 1, 1, None),
    "k_equals_e": (11, 3, 3, None),
}


def routed_offsets(name: str, seed: int = 0) -> tuple[Dispatch, int]:
    tokens, experts, k, forced = ROUTINGS[name]
    gen = torch.Generator().manual_seed(seed)
    if forced is None:
        choice = torch.rand(tokens, experts, generator=gen).topk(k).indices  # (T, k)
    else:
        choice = forced(tokens)
    return Dispatch.top_k(choice, experts), experts


def oracle(x: torch.Tensor, weight: torch.Tensor, dispatch: Dispatch) -> torch.Tensor:
    """Each row times its own expert's matrix, in fp64: no grouping, no offsets."""
    return torch.einsum("ak,akn->an", x.double(), weight.double()[dispatch.expert_index])


def operands(dispatch: Dispatch, experts: int, dtype: torch.dtype, k_dim=16, n_dim=24, seed=1):
    gen = torch.Generator().manual_seed(seed)
    rows = dispatch.token_index.shape[0]
    x = torch.randn(rows, k_dim, generator=gen).to(dtype)
    weight = torch.randn(experts, k_dim, n_dim, generator=gen).to(dtype)
    grad = torch.randn(rows, n_dim, generator=gen).to(dtype)
    return x, weight, grad


def run(impl: str, x, weight, offsets, grad):
    x = x.clone().requires_grad_(True)
    weight = weight.clone().requires_grad_(True)
    y = grouped_mm(x, weight, offsets, impl=impl)
    gx, gw = torch.autograd.grad(y, (x, weight), grad)
    return y, gx, gw


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_loop_matches_fp64_oracle(routing: str) -> None:
    dispatch, experts = routed_offsets(routing)
    x, weight, grad = operands(dispatch, experts, torch.float32)
    y, gx, gw = run("loop", x, weight, dispatch.offsets, grad)
    torch.testing.assert_close(y.double(), oracle(x, weight, dispatch), rtol=1e-5, atol=1e-5)
    xd = x.double().requires_grad_(True)
    wd = weight.double().requires_grad_(True)
    ox, ow = torch.autograd.grad(oracle(xd, wd, dispatch), (xd, wd), grad.double())
    torch.testing.assert_close(gx.double(), ox, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw.double(), ow, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
@pytest.mark.parametrize("impl", CPU_IMPLS[1:])
def test_fp32_equals_loop(impl: str, routing: str) -> None:
    dispatch, experts = routed_offsets(routing)
    x, weight, grad = operands(dispatch, experts, torch.float32)
    got = run(impl, x, weight, dispatch.offsets, grad)
    want = run("loop", x, weight, dispatch.offsets, grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    if routing == "empty_experts":  # experts 1, 2, 4, 5 got no rows: exactly zero gradient
        assert torch.equal(got[2][[1, 2, 4, 5]], torch.zeros_like(got[2][[1, 2, 4, 5]]))


@pytest.mark.parametrize("routing", sorted(ROUTINGS))
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_bf16_close_to_fp32_loop(impl: str, routing: str) -> None:
    dispatch, experts = routed_offsets(routing)
    x, weight, grad = operands(dispatch, experts, torch.bfloat16)
    got = run(impl, x, weight, dispatch.offsets, grad)
    want = run("loop", x.float(), weight.float(), dispatch.offsets, grad.float())
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.bfloat16
        torch.testing.assert_close(g.float(), w, rtol=2e-2, atol=2e-2 * w.abs().max().item())


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_sum_backward_with_expanded_grad(impl: str) -> None:
    """`y.sum().backward()` feeds a stride-0 grad, which torch._grouped_mm rejects raw."""
    dispatch, experts = routed_offsets("random")
    x, weight, _ = operands(dispatch, experts, torch.float32)
    x.requires_grad_(True)
    grouped_mm(x, weight, dispatch.offsets, impl=impl).sum().backward()
    want = torch.einsum("en->e", weight.sum(1))[dispatch.expert_index]  # d(sum y)/dx row sums
    torch.testing.assert_close(x.grad.sum(1), want, rtol=1e-4, atol=1e-4)


def test_unaligned_shapes_refused_by_torch_path_only() -> None:
    dispatch, experts = routed_offsets("random")
    x, weight, _ = operands(dispatch, experts, torch.float32, k_dim=7, n_dim=5)
    with pytest.raises(ValueError, match="multiples of 4"):
        grouped_mm(x, weight, dispatch.offsets, impl="torch")
    for impl in ("mm", "bmm"):
        y = grouped_mm(x, weight, dispatch.offsets, impl=impl)
        torch.testing.assert_close(y.double(), oracle(x, weight, dispatch), rtol=1e-5, atol=1e-5)


def test_fp64_mm_path_passes_gradcheck() -> None:
    dispatch, experts = routed_offsets("empty_experts")
    x, weight, _ = operands(dispatch, experts, torch.float64, k_dim=3, n_dim=2)
    x.requires_grad_(True)
    weight.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: grouped_mm(a, b, dispatch.offsets, impl="mm"), (x, weight)
    )


def test_unknown_impl_and_bad_offsets() -> None:
    dispatch, experts = routed_offsets("random")
    x, weight, _ = operands(dispatch, experts, torch.float32)
    with pytest.raises(ValueError, match="known: loop"):
        grouped_mm(x, weight, dispatch.offsets, impl="nope")
    for impl in ("loop", "mm", "bmm", "torch"):
        with pytest.raises(ValueError, match="offsets end at"):
            grouped_mm(x[:-1], weight, dispatch.offsets, impl=impl)


def test_cpu_dispatch_policy() -> None:
    weight = torch.zeros(8, 16, 16)
    # torch._grouped_mm where it takes the operands (the routing does not matter); never bmm.
    assert choose(weight) == "torch"
    # fp64 and unaligned widths are refused by torch._grouped_mm: the per-expert mm path.
    assert choose(weight.double()) == "mm"
    assert choose(torch.zeros(8, 6, 16)) == "mm"


def test_cpu_dispatch_takes_the_concurrent_path_for_small_experts(monkeypatch) -> None:
    from models.kernels import dispatch as dispatch_module

    weight = torch.zeros(8, 512, 512)  # K x N at the weight threshold
    small = dispatch_module.CONCURRENT_MAX_ROWS_PER_EXPERT * 8  # A at the row threshold
    monkeypatch.setattr(dispatch_module.torch, "get_num_threads", lambda: 2)
    assert choose(weight, rows=small) == "mm_concurrent"
    assert choose(weight, rows=small + 1) == "torch"  # experts big enough to thread themselves
    assert choose(weight.double(), rows=small + 1) == "mm"
    assert choose(torch.zeros(1, 512, 512), rows=4) == "torch"  # one expert: nothing to overlap
    assert choose(torch.zeros(8, 16, 16), rows=8) == "torch"  # tiny products: hand-off dominates
    monkeypatch.setattr(dispatch_module.torch, "get_num_threads", lambda: 1)
    assert choose(weight, rows=small) == "torch"  # one thread: nothing to overlap


def test_expert_groups_are_contiguous_balanced_and_skip_idle_experts() -> None:
    from models.kernels.concurrent import expert_groups

    ranges = [(0, 10), (10, 10), (10, 40), (40, 50), (50, 100)]  # rows 10, 0, 30, 10, 50
    assert expert_groups(ranges, 2) == [[0, 2, 3], [4]]
    assert expert_groups(ranges, 1) == [[0, 2, 3, 4]]
    assert expert_groups([(0, 0), (0, 0)], 2) == []
    groups = expert_groups([(i * 5, i * 5 + 5) for i in range(8)], 3)
    assert [e for g in groups for e in g] == list(range(8)) and len(groups) == 3


def test_concurrent_path_is_counted_under_a_dispatch_mode() -> None:
    """FlopCounterMode is per thread: under it the products run on the calling thread."""
    from torch.utils.flop_counter import FlopCounterMode

    dispatch, experts = routed_offsets("random")
    x, weight, _ = operands(dispatch, experts, torch.float32)
    with FlopCounterMode(display=False) as counter:
        grouped_mm(x, weight, dispatch.offsets, impl="mm_concurrent")
    assert counter.get_total_flops() == 2 * x.shape[0] * x.shape[1] * weight.shape[2]


# ---- permute / unpermute


def test_dispatch_sorts_stably_and_drops_minus_one() -> None:
    choice = torch.tensor([[2, 0], [0, -1], [2, 1], [-1, 0]])  # (T=4, k=2)
    d = Dispatch.top_k(choice, num_experts=3)
    assert d.expert_index.tolist() == [0, 0, 0, 1, 2, 2]
    assert d.token_index.tolist() == [0, 1, 3, 2, 0, 2]  # token order kept inside an expert
    assert d.counts.tolist() == [3, 1, 2]
    assert d.offsets.tolist() == [3, 4, 6] and d.offsets.dtype == torch.int32
    assert d.order.tolist() == [1, 2, 7, 5, 0, 4]  # positions in the flattened (T*k) list


def test_permute_unpermute_round_trip() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(9, 5, generator=gen)
    choice = torch.rand(9, 4, generator=gen).topk(2).indices  # (T, 2), distinct experts
    d = Dispatch.top_k(choice, 4)
    rows = permute(x, d)  # (18, 5)
    torch.testing.assert_close(rows, x[d.token_index])
    torch.testing.assert_close(unpermute(rows, d), 2 * x)  # each token twice, unweighted
    weights = torch.rand(9, 2, generator=gen)
    weights = weights / weights.sum(1, keepdim=True)
    torch.testing.assert_close(unpermute(rows, d, weights.reshape(-1)[d.order]), x)


def test_unpermute_gives_zero_to_dropped_tokens() -> None:
    x = torch.arange(12.0).view(4, 3)
    d = Dispatch.top_k(torch.tensor([[1], [-1], [0], [-1]]), 2)
    back = unpermute(permute(x, d), d)
    torch.testing.assert_close(back, x * torch.tensor([1.0, 0, 1, 0])[:, None])


def _index_add_glue(rows: torch.Tensor, d: Dispatch) -> torch.Tensor:
    """The scatter-add the gather-only unpermute replaced (sums each token's rows in row order)."""
    return rows.new_zeros(d.num_tokens, rows.shape[1]).index_add(0, d.token_index, rows)


def _looped_sum(rows: torch.Tensor, d: Dispatch) -> torch.Tensor:
    """Each token's rows added one by one in row (expert) order, starting from zero."""
    out = rows.new_zeros(d.num_tokens, rows.shape[1])
    for row, token in enumerate(d.token_index.tolist()):
        out[token] = out[token] + rows[row]
    return out


def _uneven_dispatch(seed: int) -> Dispatch:
    """Assignments as UoE lists them (expert-major, a token 0..E times, some dropped)."""
    gen = torch.Generator().manual_seed(seed)
    tokens, experts, slots = 13, 5, 6
    token_index = torch.stack([torch.randperm(tokens, generator=gen)[:slots] for _ in range(5)])
    expert_index = torch.arange(experts)[:, None].expand(experts, slots).clone()
    expert_index[torch.rand(experts, slots, generator=gen) < 0.3] = -1  # dropped slots
    return Dispatch.build(token_index.reshape(-1), expert_index.reshape(-1), experts, tokens)


DISPATCHES = {
    "top2": lambda: routed_offsets("random")[0],
    "top3_of_3": lambda: routed_offsets("k_equals_e")[0],
    "dropped": lambda: Dispatch.top_k(torch.tensor([[1], [-1], [0], [-1], [1]]), 2),
    "uneven": lambda: _uneven_dispatch(0),
    "padded_batch": lambda: Dispatch.top_k(
        torch.tensor([[0, 2], [1, 0], [2, 1]]), 3, token_ids=torch.tensor([4, 0, 2]), num_tokens=6
    ),
}


@pytest.mark.parametrize("name", sorted(DISPATCHES))
def test_unpermute_and_permute_backward_equal_index_add_bit_for_bit(name: str) -> None:
    d = DISPATCHES[name]()
    gen = torch.Generator().manual_seed(3)
    rows = torch.randn(d.token_index.shape[0], 7, generator=gen)
    summed = unpermute(rows, d)
    assert torch.equal(summed, _index_add_glue(rows, d))
    assert torch.equal(summed, _looped_sum(rows, d))
    # permute's gradient is the same per-token sum; unpermute's is the gather.
    x = torch.randn(d.num_tokens, 7, generator=gen, requires_grad=True)
    (grad_x,) = torch.autograd.grad(permute(x, d), x, rows)
    assert torch.equal(grad_x, _index_add_glue(rows, d))
    leaf = rows.clone().requires_grad_(True)
    grad_out = torch.randn(d.num_tokens, 7, generator=gen)
    (grad_rows,) = torch.autograd.grad(unpermute(leaf, d), leaf, grad_out)
    assert torch.equal(grad_rows, grad_out[d.token_index])


def test_slot_table_by_hand() -> None:
    # Rows sorted by expert: expert 0 takes tokens 0, 2; expert 1 tokens 0, 1; expert 2 token 0.
    d = Dispatch.top_k(torch.tensor([[0, 1, 2], [1, -1, -1], [0, -1, -1]]), 3)
    assert d.token_index.tolist() == [0, 2, 0, 1, 0]
    assert d.slots_per_token == 3
    # token 0: rows 0, 2, 4 (experts 0, 1, 2); token 1: row 3; token 2: row 1; 5 = no row
    assert d.row_of_slot.tolist() == [0, 2, 4, 3, 5, 5, 1, 5, 5]


def test_permute_refuses_an_input_of_the_wrong_length() -> None:
    d = Dispatch.top_k(torch.tensor([[0], [1]]), 2)
    with pytest.raises(ValueError, match="rows but the dispatch is for 2"):
        permute(torch.zeros(3, 4), d)
    with pytest.raises(ValueError, match="token_ids"):
        Dispatch.top_k(torch.tensor([[0], [1]]), 2, token_ids=torch.tensor([0, 1]))
