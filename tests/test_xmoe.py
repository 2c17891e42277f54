"""XMoE's FFN against a looped reference written from the paper's rule and the authors' capacity
(no code shared with the part): outputs, gradients, experts-per-token and drop statistics, FLOPs
from the routed sizes, on random weights and padded batches, in both capacity orders; mutants of
the threshold rule, the gate and the overflow priority that the reference catches; per-sequence
capacity; the causal form; the fields.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.xmoe import XMoEFields, build_xmoe, xmoe_config
from models.config import ModelConfig, ModelTask
from models.errors import InputError
from models.moe import xmoe
from models.moe.xmoe import XMoEConfig, XMoEFFN, threshold_choice

D, H, E = 8, 4, 4


def make_ffn(seed: int = 0, **changes) -> XMoEFFN:
    settings = dict(
        dim=D,
        hidden=H,
        experts=E,
        budget=2,
        threshold=0.5,  # with 4 experts, equal logits (a zero token) put the mass exactly on it
        capacity_factor=0.5,  # tight enough that every batch below drops assignments
        min_capacity=1,
        balance_loss_weight=0.1,
    )
    settings.update(changes)
    torch.manual_seed(seed)
    ffn = XMoEFFN(XMoEConfig(**settings))
    with torch.no_grad():
        ffn.b_up.normal_()  # a zero token's expert output is then not zero
    return ffn


def padded_batch(seed: int, lengths: list[int], length: int = 9) -> tuple[torch.Tensor, ...]:
    """(B, L, D) inputs, their mask; token 2 of each sequence is all zero (equal logits)."""
    g = torch.Generator().manual_seed(seed)
    x = 2.0 * torch.randn(len(lengths), length, D, generator=g)  # (B, L, D): sharp routers
    x[:, 2] = 0.0
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    return x, mask


def reference(ffn: XMoEFFN, x: torch.Tensor, mask: torch.Tensor) -> dict:
    """The XMoE block, token by token and expert by expert, in the part's weights.

    p = softmax(W x); experts by descending p (ties: lower index first) are taken while the
    mass taken so far is < threshold (the first always); an expert has max(ceil(cf budget n /
    E), min_capacity) slots in a sequence of n real tokens and, when over, keeps its
    assignments by (rank among the token's choices, higher p, earlier position), or by
    position in the causal form; output = sum over kept of p_e (W2_e gelu(W1_e x + b1_e));
    loss = weight E sum_e mean_t p_e * share of tokens whose top expert is e."""
    cfg = ffn.xmoe
    y = torch.zeros_like(x)
    per_expert = [0] * E
    top1 = [0] * E
    p_sum = [x.new_zeros(()) for _ in range(E)]
    wanted, kept_per_token = [], []
    for b in range(x.shape[0]):
        n = int(mask[b].sum())
        cap = max(math.ceil(cfg.capacity_factor * cfg.budget * n / E), cfg.min_capacity)
        claims = []  # (expert, rank, p, position)
        for t in range(x.shape[1]):
            if not mask[b, t]:
                continue
            z = [ffn.router.weight[e] @ x[b, t] for e in range(E)]
            expz = [torch.exp(v) for v in z]
            p = [v / sum(expz) for v in expz]
            for e in range(E):
                p_sum[e] = p_sum[e] + p[e]
            order = sorted(range(E), key=lambda e: (-float(p[e].detach()), e))
            top1[order[0]] += 1
            mass, taken = 0.0, []
            for e in order:
                if taken and not mass < cfg.threshold:
                    break
                taken.append(e)
                mass += float(p[e].detach())
            wanted.append(len(taken))
            claims += [(e, rank, p[e], t) for rank, e in enumerate(taken)]
        kept_here = {t: 0 for t in range(x.shape[1])}
        for e in range(E):
            mine = [c for c in claims if c[0] == e]
            if cfg.causal:
                mine.sort(key=lambda c: c[3])
            else:
                mine.sort(key=lambda c: (c[1], -float(c[2].detach()), c[3]))
            for _, _, p_e, t in mine[:cap]:
                per_expert[e] += 1
                kept_here[t] += 1
                hidden = F.gelu(x[b, t] @ ffn.w_up[e] + ffn.b_up[e])
                y[b, t] = y[b, t] + p_e * (hidden @ ffn.w_down[e])
        kept_per_token += [kept_here[t] for t in range(int(mask[b].sum()))]
    real = len(wanted)
    balance = E * sum((top1[e] / real) * (p_sum[e] / real) for e in range(E))
    return {
        "y": y,
        "loss": cfg.balance_loss_weight * balance,
        "tokens_per_expert": [float(c) for c in per_expert],
        "dropped_fraction": 1 - sum(per_expert) / sum(wanted),
        "experts_per_token_mean": sum(wanted) / real,
        "experts_per_token_max": float(max(wanted)),
        "kept_experts_per_token_mean": sum(kept_per_token) / real,
    }


LENGTHS = [9, 6, 1]


@pytest.mark.parametrize("causal", [False, True])
def test_outputs_statistics_and_loss_equal_the_reference(causal: bool) -> None:
    ffn = make_ffn(causal=causal).eval()
    x, mask = padded_batch(1, LENGTHS)
    y, aux = ffn(x, mask)
    want = reference(ffn, x, mask)
    torch.testing.assert_close(y, want["y"], rtol=1e-5, atol=1e-6)
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))  # padding gets 0
    assert aux.stats["tokens_per_expert"].tolist() == want["tokens_per_expert"]
    for key in ("dropped_fraction", "experts_per_token_mean", "kept_experts_per_token_mean"):
        assert aux.stats[key].item() == pytest.approx(want[key]), key
    assert aux.stats["experts_per_token_max"].item() == want["experts_per_token_max"]
    assert 0 < want["dropped_fraction"] < 1  # the case exercises the capacity
    assert want["experts_per_token_max"] > 1 and want["experts_per_token_mean"] < E  # adaptive
    torch.testing.assert_close(aux.loss, want["loss"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("impl", ["loop", "bmm", None])
def test_gradients_equal_the_reference(impl: str | None) -> None:
    """d(sum(y * r) + loss) for the input, the router, the expert weights and the up bias."""
    ffn = make_ffn(3, impl=impl).eval()
    x, mask = padded_batch(4, LENGTHS)
    r = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    grads = []
    for run in ("part", "reference"):
        ffn.zero_grad()
        xg = x.clone().requires_grad_(True)
        if run == "part":
            y, aux = ffn(xg, mask)
            loss = aux.loss
        else:
            out = reference(ffn, xg, mask)
            y, loss = out["y"], out["loss"]
        ((y * r).sum() + loss).backward()
        params = [ffn.router.weight, ffn.w_up, ffn.w_down, ffn.b_up]
        grads.append([xg.grad.clone(), *(p.grad.clone() for p in params)])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_flops_follow_the_kept_rows() -> None:
    ffn = make_ffn(6, impl="mm").eval()
    x, mask = padded_batch(7, LENGTHS)
    with torch.no_grad():
        _, aux = ffn(x, mask)
    rows = sum(reference(ffn, x, mask)["tokens_per_expert"])
    real = int(mask.sum())
    assert ffn.analytic_flops(x.shape, aux) == {
        "router": 2.0 * real * D * E,
        "ffn_up": 2.0 * rows * D * H,
        "ffn_down": 2.0 * rows * H * D,
    }
    assert ffn.b_down is None  # the authors' experts have no output bias


def test_threshold_rule_on_exact_probabilities() -> None:
    """Mass before each place: taken while < threshold; 0.75 stops at the place it reaches."""
    probs = torch.tensor([[0.125, 0.5, 0.25, 0.125], [0.25, 0.25, 0.25, 0.25], [1.0, 0, 0, 0]])
    ordered, expert, taken = threshold_choice(probs, 0.75)
    assert expert[0].tolist() == [1, 2, 0, 3]  # ties keep the lower index first
    assert taken.sum(-1).tolist() == [2, 3, 1]
    assert torch.equal(ordered[0], torch.tensor([0.5, 0.25, 0.125, 0.125]))
    _, _, all_taken = threshold_choice(probs, 1.0)
    assert all_taken.sum(-1).tolist() == [4, 4, 1]


def _distance_to_reference(ffn: XMoEFFN) -> float:
    x, mask = padded_batch(8, LENGTHS)
    with torch.no_grad():
        y, _ = ffn(x, mask)
        return float((y - reference(ffn, x, mask)["y"]).abs().max())


def _taken_while_at_most(probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, ...]:
    ordered, expert = probs.sort(dim=-1, descending=True, stable=True)
    taken = torch.cumsum(ordered, -1) - ordered <= threshold
    taken[:, 0] = True
    return ordered, expert, taken


def _mass_counted_with_the_current(
    probs: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, ...]:
    ordered, expert = probs.sort(dim=-1, descending=True, stable=True)
    taken = torch.cumsum(ordered, -1) < threshold
    taken[:, 0] = True
    return ordered, expert, taken


def _renormalised(probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, ...]:
    ordered, expert, taken = threshold_choice(probs, threshold)
    return ordered / (ordered * taken).sum(-1, keepdim=True), expert, taken


@pytest.mark.parametrize(
    "mutant",
    [
        pytest.param(_taken_while_at_most, id="threshold_compared_with_<="),
        pytest.param(_mass_counted_with_the_current, id="cumulative_taken_with_the_current"),
        pytest.param(_renormalised, id="gates_renormalised"),
    ],
)
def test_the_reference_catches_a_mutated_threshold_rule(mutant, monkeypatch) -> None:
    ffn = make_ffn(9).eval()
    assert _distance_to_reference(ffn) < 1e-5
    monkeypatch.setattr(xmoe, "threshold_choice", mutant)
    assert _distance_to_reference(ffn) > 1e-3


def test_the_reference_catches_a_position_order_priority() -> None:
    """Mutant: the non-causal part serving overflowing experts in position order."""
    ffn = make_ffn(9).eval()
    assert _distance_to_reference(ffn) < 1e-5
    mutant = make_ffn(9, causal=True).eval()  # the same weights, position-order capacity
    x, mask = padded_batch(8, LENGTHS)
    with torch.no_grad():
        y, _ = mutant(x, mask)
        assert float((y - reference(ffn, x, mask)["y"]).abs().max()) > 1e-3


def test_a_sequence_routes_the_same_alone_and_in_a_batch() -> None:
    ffn = make_ffn(10).eval()
    x, mask = padded_batch(11, [9, 7, 3])
    with torch.no_grad():
        together, _ = ffn(x, mask)
        for b, n in enumerate([9, 7, 3]):
            alone, _ = ffn(x[b : b + 1, :n], mask[b : b + 1, :n])
            torch.testing.assert_close(alone[0], together[b, :n], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_only_the_causal_form_keeps_earlier_outputs_from_later_tokens(causal: bool) -> None:
    """Causal: token t's slots depend on tokens <= t only. The paper's priority reads later
    tokens: a later first choice takes an earlier second choice's slot."""
    ffn = make_ffn(12, causal=causal).eval()
    x, mask = padded_batch(13, [9, 9])
    changed = x.clone()
    changed[:, 5:] = 2.0 * torch.randn(2, 4, D, generator=torch.Generator().manual_seed(14))
    with torch.no_grad():
        before, _ = ffn(x, mask)
        after, _ = ffn(changed, mask)
    assert not torch.allclose(after[:, 5:], before[:, 5:])
    same = torch.equal(after[:, :5], before[:, :5])
    assert same == causal


def test_fields_shape_checks_and_the_causal_task() -> None:
    cfg = ModelConfig(dim=16, ffn_dim=32, experts=4, capacity_factor=1.5)
    made = xmoe_config(cfg, XMoEFields(threshold=0.7, granularity=2))
    assert (made.experts, made.hidden, made.budget) == (8, 16, 2)
    assert (made.threshold, made.capacity_factor, made.causal) == (0.7, 1.5, False)
    paper = xmoe_config(ModelConfig())  # ffn 128, 4 experts: 16 small experts of 32
    assert (paper.experts, paper.hidden, paper.threshold, paper.min_capacity) == (16, 32, 0.9, 4)
    with pytest.raises(InputError, match="threshold"):
        XMoEFields(threshold=0.0)
    with pytest.raises(InputError, match="granularity"):
        XMoEFields(granularity=0)
    with pytest.raises(InputError, match="granularity"):
        xmoe_config(ModelConfig(ffn_dim=2), XMoEFields(granularity=4))
    causal = build_xmoe(cfg, ModelTask(3, 11, 1, 16, causal=True))
    assert causal.encoder.blocks[0].ffn.xmoe.causal
    assert not build_xmoe(cfg, ModelTask(3, 11, 1, 16)).encoder.blocks[0].ffn.xmoe.causal
