from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.measure.quiet import import_fvcore_nn
from models.layers.attention import MultiHeadAttention
from models.layers.kernel_attention import (
    feature_generator,
    gaussian_projection,
    softmax_kernel_features,
)
from models.layers.parts import lengths_to_mask
from models.layers.performer import PerformerAttention

DIM, HEADS, LEN = 8, 2, 6
LENGTHS = torch.tensor([6, 4, 1])


def _performer(features: int = 16, seed: int = 0, **kwargs) -> PerformerAttention:
    torch.manual_seed(0)
    return PerformerAttention(DIM, HEADS, features, seed=seed, **kwargs).eval()


def _exact_attention(attn: PerformerAttention) -> MultiHeadAttention:
    full = MultiHeadAttention(DIM, HEADS, attn_dropout=0.0).eval()
    full.qkv.load_state_dict(attn.qkv.state_dict())
    full.out.load_state_dict(attn.out.state_dict())
    return full


def _heads(attn: PerformerAttention, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q, k, v (B, H, L, Dh) computed by hand from the module's weights."""
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias  # (B, L, 3D)
    b, n, _ = x.shape
    return tuple(qkv.view(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4))


def test_orthogonal_blocks_and_explicit_generator() -> None:
    rng_before = torch.random.get_rng_state()
    w = gaussian_projection(10, 4, feature_generator(3, 0))
    assert torch.equal(torch.random.get_rng_state(), rng_before), "global RNG must not move"
    assert torch.equal(w, gaussian_projection(10, 4, feature_generator(3, 0)))
    assert not torch.allclose(w, gaussian_projection(10, 4, feature_generator(3, 1)))
    for block in (w[0:4], w[4:8], w[8:10]):
        gram = block @ block.T
        off_diagonal = gram - torch.diag(torch.diagonal(gram))
        assert off_diagonal.abs().max() < 1e-4
    assert not torch.allclose(w[0] @ w[4], torch.tensor(0.0), atol=1e-3)  # blocks independent


def test_orthogonal_rows_are_standard_gaussian() -> None:
    rows = gaussian_projection(12_000, 4, feature_generator(0, 0))  # 3000 independent blocks
    torch.testing.assert_close(rows.mean(0), torch.zeros(4), atol=0.05, rtol=0)
    torch.testing.assert_close(rows.T @ rows / len(rows), torch.eye(4), atol=0.06, rtol=0)


@pytest.mark.parametrize("orthogonal", [True, False])
def test_random_feature_kernel_is_unbiased(orthogonal: bool) -> None:
    """The mean of phi(q).phi(k) over many independent draws converges to exp(q.k / sqrt(d))."""
    d, m, draws = 4, 64, 400  # 16 orthogonal blocks per draw
    gen = torch.Generator().manual_seed(7)
    q, k = torch.randn(2, d, generator=gen, dtype=torch.float64) * 0.8
    exact = math.exp(float(q @ k) / math.sqrt(d))
    scale = d**-0.25
    estimates = []
    for _ in range(draws):  # successive draws from one stream are independent
        w = gaussian_projection(m, d, gen, orthogonal=orthogonal).double()
        estimates.append(
            softmax_kernel_features(q * scale, w) @ softmax_kernel_features(k * scale, w)
        )
    estimates = torch.stack(estimates)
    mean, stderr = float(estimates.mean()), float(estimates.std() / math.sqrt(draws))
    assert abs(mean - exact) < 4 * stderr, (mean, exact, stderr)
    assert abs(mean - exact) / exact < 0.03
    assert stderr / exact < 0.01  # the check above is tight enough to fail on a biased map


def test_error_against_softmax_attention_shrinks_with_more_features() -> None:
    x = torch.randn(3, LEN, DIM, generator=torch.Generator().manual_seed(0))
    mask = lengths_to_mask(LENGTHS, LEN)
    errors = []
    for features in (8, 32, 128, 512):
        per_seed = []
        for seed in range(4):
            attn = _performer(features, seed=seed, eps=0.0)
            exact, _ = _exact_attention(attn)(x, mask)
            approx, _ = attn(x, mask)
            error = (approx - exact)[mask].norm() / exact[mask].norm()
            per_seed.append(float(error.detach()))
        errors.append(sum(per_seed) / len(per_seed))
    assert all(a > b for a, b in itertools.pairwise(errors)), errors
    # ~1/sqrt(m) once m is large; measured 0.26, 0.20, 0.11, 0.07
    assert errors[-1] < errors[0] / 3, errors
    assert errors[-1] < 0.1, errors


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_matches_an_unstabilized_float64_reference(kernel: str) -> None:
    """Max subtraction cancels: the stabilized module equals the plain estimator, real keys only."""
    attn = _performer(16, kernel=kernel, eps=0.0).double()
    x = torch.randn(3, LEN, DIM, dtype=torch.float64)
    y, _ = attn(x, lengths_to_mask(LENGTHS, LEN))
    q, k, v = _heads(attn, x)
    scale = (DIM // HEADS) ** -0.25
    w = attn.projection
    heads_out = torch.zeros(3, HEADS, LEN, DIM // HEADS, dtype=torch.float64)
    for b, n in enumerate(LENGTHS.tolist()):
        for h in range(HEADS):
            if kernel == "softmax":
                qf = softmax_kernel_features(q[b, h] * scale, w)  # (L, m)
                kf = softmax_kernel_features(k[b, h, :n] * scale, w)  # (n, m)
            else:
                qf, kf = torch.relu(q[b, h] * scale @ w.T), torch.relu(k[b, h, :n] * scale @ w.T)
            weights = qf @ kf.T  # (L, n) un-normalised kernel values
            heads_out[b, h] = weights @ v[b, h, :n] / weights.sum(-1, keepdim=True)
    expected = attn.out(heads_out.transpose(1, 2).reshape(3, LEN, DIM))
    torch.testing.assert_close(y, expected, atol=1e-9, rtol=1e-9)


def test_large_logits_stay_finite() -> None:
    attn = _performer(16)
    x = 30 * torch.randn(2, LEN, DIM)
    y, _ = attn(x, torch.ones(2, LEN, dtype=torch.bool))
    assert torch.isfinite(y).all()
    q, _, _ = _heads(attn, x)
    plain = softmax_kernel_features(q * (DIM // HEADS) ** -0.25, attn.projection)  # (B, H, L, m)
    # Without the max subtraction some queries' features all underflow: 0 / 0 in the estimator.
    assert (plain.sum(-1) == 0).any()


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_padded_keys_contribute_nothing(kernel: str) -> None:
    attn = _performer(16, kernel=kernel)
    x = torch.randn(3, LEN, DIM)
    mask = lengths_to_mask(LENGTHS, LEN)
    y, _ = attn(x, mask)
    for b, n in enumerate(LENGTHS.tolist()):  # the same example with its padding cut off
        alone, _ = attn(x[b : b + 1, :n], torch.ones(1, n, dtype=torch.bool))
        torch.testing.assert_close(y[b, :n], alone[0], atol=1e-5, rtol=1e-5)
    changed = torch.where(mask[..., None], x, 100 * torch.randn_like(x))
    torch.testing.assert_close(attn(changed, mask)[0][mask], y[mask])
    changed[1, 0] += 1.0  # a real token does change the outputs (the check above can fail)
    assert not torch.allclose(attn(changed, mask)[0][1, 0], y[1, 0])


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_gradients_flow(kernel: str) -> None:
    attn = _performer(16, kernel=kernel).train()
    x = torch.randn(3, LEN, DIM, requires_grad=True)
    y, _ = attn(x, lengths_to_mask(LENGTHS, LEN))
    y.square().sum().backward()
    for name, p in [*attn.named_parameters(), ("x", x)]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert not attn.projection.requires_grad


def test_redraw_is_seeded_counted_and_restored() -> None:
    x, mask = torch.randn(1, LEN, DIM), torch.ones(1, LEN, dtype=torch.bool)
    a, b = _performer(seed=5, redraw_interval=2).train(), _performer(seed=5, redraw_interval=2)
    b.train()
    rng_before = torch.random.get_rng_state()
    seen = []
    for _ in range(5):
        a(x, mask)
        b(x, mask)
        assert torch.equal(a.projection, b.projection)
        seen.append(a.projection.clone())
    assert torch.equal(torch.random.get_rng_state(), rng_before), "redraws must not use global RNG"
    # calls 1-2 use draw 0, calls 3-4 draw 1, call 5 draw 2
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[2], seen[3])
    assert not torch.equal(seen[1], seen[2]) and not torch.equal(seen[3], seen[4])
    torch.testing.assert_close(seen[2], gaussian_projection(16, 4, feature_generator(5, 1)))

    restored = _performer(seed=5, redraw_interval=2).train()
    restored.load_state_dict(a.state_dict())
    assert (restored.train_calls, restored.draw) == (5, 2)
    for module in (a, restored):
        module(x, mask)  # call 6: still draw 2; call 7: draw 3
        module(x, mask)
    assert torch.equal(a.projection, restored.projection) and a.draw == 3

    frozen = a.projection.clone()
    a.eval()
    for _ in range(4):
        a(x, mask)
    assert torch.equal(a.projection, frozen), "evaluation never redraws"


@pytest.mark.parametrize("kernel", ["softmax", "relu"])
def test_analytic_flops_equal_the_counted_flops(kernel: str) -> None:
    attn = _performer(12, kernel=kernel)
    x = torch.randn(3, LEN, DIM)
    with FlopCounterMode(display=False) as counter:
        _, aux = attn(x, lengths_to_mask(LENGTHS, LEN))
    analytic = attn.analytic_flops(x.shape, aux)
    assert sum(analytic.values()) == counter.get_total_flops()
    assert analytic["attn_kv"] == 2 * 3 * LEN * 12 * DIM


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="kernel"):
        PerformerAttention(DIM, HEADS, 8, seed=0, kernel="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="redraw_interval"):
        PerformerAttention(DIM, HEADS, 8, seed=0, redraw_interval=-1)


@pytest.mark.gpu
def test_cuda_matches_cpu_and_redraws_on_the_device() -> None:
    attn = _performer(16, redraw_interval=1).train()
    x, mask = torch.randn(3, LEN, DIM), lengths_to_mask(LENGTHS, LEN)
    expected, _ = copy.deepcopy(attn)(x, mask)
    attn.cuda()
    got, _ = attn(x.cuda(), mask.cuda())  # call 1: draw 0, as on the CPU
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)
    attn(x.cuda(), mask.cuda())  # call 2: draw 1
    assert attn.projection.device.type == "cuda" and attn.draw == 1


def test_fvcore_traces_the_model_and_counts_its_matmuls() -> None:
    """fvcore traces with torch.jit, which takes every state_dict value (the redraw counter
    included) as a graph input; only tensors are accepted there. Its count, 2 x multiply-adds,
    and torch's FlopCounterMode's both equal a hand count of the part's matmuls."""
    FlopCountAnalysis = import_fvcore_nn().FlopCountAnalysis

    from bench.measure.flops.counted import count_flops

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = _performer(8, redraw_interval=3)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.attn(x, mask)[0]

    model = Logits()
    x, mask = torch.randn(1, LEN, DIM), torch.ones(1, LEN) > 0  # (B, L, D), (B, L)
    analysis = FlopCountAnalysis(model, (x, mask))
    analysis.unsupported_ops_warnings(False)
    analysis.tracer_warnings("none")
    b, n, d, h, dh, m = 1, LEN, DIM, HEADS, DIM // HEADS, 8
    want = (
        2 * b * n * d * 3 * d  # qkv projection
        + 2 * 2 * b * h * n * dh * m  # W q and W k: (L, Dh) x (Dh, m) per head
        + 2 * b * h * m * n * dh  # phi(K)^T V: (m, L) x (L, Dh)
        + 2 * b * h * n * m * dh  # phi(Q) (phi(K)^T V): (L, m) x (m, Dh)
        + 2 * b * h * n * m  # phi(Q) sum_j phi(k_j): (L, m) x (m, 1)
        + 2 * b * n * d * d  # out projection
    )  # 2304 + 1536 + 768 + 768 + 192 + 768
    assert 2 * analysis.total() == want
    assert count_flops(lambda: model(x, mask)).total == want
