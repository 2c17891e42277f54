"""The causal forms of the shared parts, checked against independent references: unidirectional
FAVOR+ against a looped prefix-sum formula and against the bidirectional Performer run on each
prefix; Switch's position-major capacity order against a looped count."""

from __future__ import annotations

import math

import pytest
import torch

from bench.measure.flops import count_flops
from models.layers.kernel_attention import relu_kernel_features, softmax_kernel_features
from models.layers.performer import PerformerAttention
from models.moe.routing import switch_top1, time_major_order

DIM, HEADS = 8, 2


def _pair(kernel: str, chunk: int, eps: float | None = None):
    """A causal Performer and a bidirectional one with the same weights and features."""
    torch.manual_seed(0)
    causal = PerformerAttention(
        DIM, HEADS, 16, seed=3, kernel=kernel, causal=True, chunk_size=chunk, eps=eps
    ).eval()
    torch.manual_seed(0)
    plain = PerformerAttention(DIM, HEADS, 16, seed=3, kernel=kernel, eps=eps).eval()
    return causal, plain


def _looped_favor(attn: PerformerAttention, x: torch.Tensor) -> torch.Tensor:
    """y_i = sum_{j<=i} (phi(q_i).phi(k_j)) v_j / sum_{j<=i} phi(q_i).phi(k_j), unstabilized
    features, one query at a time (the prefix-sum form of lucidrains' causal_linear_attention,
    written as a loop)."""
    batch, length, _ = x.shape
    qkv = attn.qkv(x).view(batch, length, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    q, k, v = (t * (DIM // HEADS) ** -0.25 if i < 2 else t for i, t in enumerate(qkv))
    w = attn.projection.to(x.dtype)
    if attn.kernel == "softmax":
        fq, fk = softmax_kernel_features(q, w), softmax_kernel_features(k, w)  # (B, H, L, m)
    else:
        fq, fk = relu_kernel_features(q, w), relu_kernel_features(k, w)
    y = torch.zeros_like(v)  # (B, H, L, Dh)
    for i in range(length):
        scores = (fq[:, :, i : i + 1] * fk[:, :, : i + 1]).sum(-1)  # (B, H, i+1)
        y[:, :, i] = (scores[..., None] * v[:, :, : i + 1]).sum(2) / scores.sum(-1, True)
    return attn.out(y.transpose(1, 2).reshape(batch, length, DIM))


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_causal_favor_matches_the_looped_prefix_formula(kernel: str, chunk: int) -> None:
    """Without the stabilizer (eps 0) the chunked, rescaled computation is the plain formula."""
    causal, _ = _pair(kernel, chunk, eps=0.0)
    causal = causal.double()
    x = torch.randn(2, 10, DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got, _ = causal(x, torch.ones(2, 10, dtype=torch.bool))
    torch.testing.assert_close(got, _looped_favor(causal, x), atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_causal_favor_at_i_is_the_bidirectional_form_on_the_prefix(kernel: str, chunk: int) -> None:
    """With the default eps, position i equals the bidirectional Performer run on x[:, :i+1]
    alone: the running maximum makes the stabilizer exactly the prefix's."""
    causal, plain = _pair(kernel, chunk)
    x = 3 * torch.randn(2, 9, DIM, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([9, 6])
    mask = torch.arange(9)[None, :] < lengths[:, None]
    got, _ = causal(x, mask)
    for i in range(9):
        want, _ = plain(x[:, : i + 1], mask[:, : i + 1])
        real = mask[:, i]
        torch.testing.assert_close(got[real, i], want[real, i], atol=1e-5, rtol=1e-4)


def test_causal_favor_analytic_flops_match_the_counted() -> None:
    causal, _ = _pair("softmax", 4)
    x = torch.randn(2, 10, DIM)
    mask = torch.ones(2, 10, dtype=torch.bool)
    counted = count_flops(lambda: causal(x, mask))
    analytic = causal.analytic_flops(x.shape, None)
    assert sum(analytic.values()) == pytest.approx(counted.total)


def test_time_major_order_visits_positions_first() -> None:
    batch, length = 3, 4
    ids = torch.tensor([0, 1, 2, 3, 4, 5, 8, 9])  # sequence 1 has 2 real tokens, 2 has 2
    order = time_major_order(ids, batch, length)
    visited = [(int(i) // length, int(i) % length) for i in ids[order]]
    assert visited == sorted(visited, key=lambda bl: (bl[1], bl[0]))


def test_switch_fill_order_keeps_the_first_tokens_of_that_order() -> None:
    """Looped reference: walk the tokens in fill order, an expert keeps one while it has room."""
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(12, 3, generator=gen)
    order = torch.randperm(12, generator=gen)
    routing = switch_top1(logits, 2, order)
    chosen = logits.argmax(-1)
    room = [2, 2, 2]
    expected = torch.full((12,), -1)
    for t in order.tolist():
        e = int(chosen[t])
        if room[e]:
            room[e] -= 1
            expected[t] = e
    assert torch.equal(routing.expert[:, 0], expected)
    kept = expected >= 0
    probs = logits.softmax(-1).max(-1).values
    torch.testing.assert_close(routing.gate[:, 0], torch.where(kept, probs, 0.0))
    assert math.isclose(float(routing.gate.sum()), float(probs[kept].sum()), rel_tol=1e-6)
