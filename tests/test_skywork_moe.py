"""Skywork-MoE's FFN against a looped reference written from the report's equations (no code
shared with the part): outputs, gradients, drop statistics and the adaptive coefficient's
trajectory on random weights and padded batches; mutants of the gate that the reference catches;
per-sequence capacity (a sequence routes the same alone and in a batch); causality; the fields.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.skywork_moe import SkyworkFields, build_skywork_moe, skywork_config
from models.config import ModelConfig, ModelTask
from models.errors import InputError
from models.moe import skywork
from models.moe.skywork import SkyworkConfig, SkyworkMoEFFN

D, H, E, K = 8, 6, 4, 2


def make_ffn(seed: int = 0, **changes) -> SkyworkMoEFFN:
    settings = dict(
        dim=D,
        hidden=H,
        experts=E,
        top_k=K,
        capacity_factor=0.75,  # tight enough that every batch below drops assignments
        gate_scale=1.5,
        alpha_init=0.05,
        aux_smoothing=0.9,
        aux_sensitivity=0.5,
    )
    settings.update(changes)
    torch.manual_seed(seed)
    return SkyworkMoEFFN(SkyworkConfig(**settings))


def padded_batch(seed: int, lengths: list[int], length: int = 9) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), length, D, generator=g)  # (B, L, D)
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]  # (B, L)
    return x, mask


def reference(ffn: SkyworkMoEFFN, x: torch.Tensor, mask: torch.Tensor, alpha: float) -> dict:
    """The report's block, one token and one expert at a time, in the part's weights.

    z = W x; z~ = lambda (z - mean z) / s (s: sample std over the E logits); p = softmax(z~);
    the k largest p renormalised; expert e keeps at most ceil(cf k n / E) of a sequence's
    assignments, served in position order; output = sum of kept g_e SwiGLU_e(x);
    loss = alpha * E * sum_e f_e P_e (f: share of all choices, P: mean p over real tokens)."""
    cfg = ffn.skywork
    lam, cf = cfg.gate_scale, cfg.capacity_factor
    y = torch.zeros_like(x)
    per_expert = [0] * E
    chosen_count = [0] * E
    p_sum = [x.new_zeros(()) for _ in range(E)]
    assigned = dropped = real = 0
    for b in range(x.shape[0]):
        n = int(mask[b].sum())
        cap = math.ceil(cf * K * n / E)
        used = [0] * E
        for t in range(x.shape[1]):
            if not mask[b, t]:
                continue
            real += 1
            z = [ffn.router.weight[e] @ x[b, t] for e in range(E)]
            mean = sum(z) / E
            std = torch.sqrt(sum((v - mean) ** 2 for v in z) / (E - 1))
            zn = [lam * (v - mean) / torch.clamp(std, min=1e-6) for v in z]
            expz = [torch.exp(v) for v in zn]
            p = [v / sum(expz) for v in expz]
            for e in range(E):
                p_sum[e] = p_sum[e] + p[e]
            top = sorted(range(E), key=lambda e: -float(p[e].detach()))[:K]
            total = sum(p[e] for e in top)
            for e in top:
                chosen_count[e] += 1
                assigned += 1
                if used[e] >= cap:
                    dropped += 1
                    continue
                used[e] += 1
                per_expert[e] += 1
                w_gate = ffn.w_up[e][:, :H]
                w_in = ffn.w_up[e][:, H:]
                hidden = F.silu(x[b, t] @ w_gate) * (x[b, t] @ w_in)
                y[b, t] = y[b, t] + (p[e] / total) * (hidden @ ffn.w_down[e])
    balance = E * sum((chosen_count[e] / assigned) * (p_sum[e] / real) for e in range(E))
    return {
        "y": y,
        "loss": alpha * balance,
        "balance": balance,
        "tokens_per_expert": [float(c) for c in per_expert],
        "dropped_fraction": dropped / assigned,
    }


LENGTHS = [9, 6, 1]


def test_outputs_statistics_and_loss_equal_the_reference() -> None:
    ffn = make_ffn().eval()
    x, mask = padded_batch(1, LENGTHS)
    y, aux = ffn(x, mask)
    want = reference(ffn, x, mask, alpha=0.05)
    torch.testing.assert_close(y, want["y"], rtol=1e-5, atol=1e-6)
    assert torch.equal(y[~mask], torch.zeros_like(y[~mask]))  # padding gets 0
    assert aux.stats["tokens_per_expert"].tolist() == want["tokens_per_expert"]
    assert aux.stats["dropped_fraction"].item() == pytest.approx(want["dropped_fraction"])
    assert 0 < want["dropped_fraction"] < 1  # the case exercises the capacity
    torch.testing.assert_close(aux.loss, want["loss"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(aux.stats["aux_loss"], want["balance"].detach(), rtol=1e-5, atol=0)
    assert aux.stats["aux_coefficient"].item() == pytest.approx(0.05)


@pytest.mark.parametrize("impl", ["loop", "bmm", None])
def test_gradients_equal_the_reference(impl: str | None) -> None:
    """d(sum(y * r) + loss) for the input, the router and both expert weights."""
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
            out = reference(ffn, xg, mask, alpha=0.05)
            y, loss = out["y"], out["loss"]
        ((y * r).sum() + loss).backward()
        params = [ffn.router.weight, ffn.w_up, ffn.w_down]
        grads.append([xg.grad.clone(), *(p.grad.clone() for p in params)])
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_the_aux_coefficient_follows_the_drop_rate_per_call() -> None:
    """alpha_{t+1} = beta alpha_t + (1 - beta) xi d_t over five training calls, each call's loss
    using alpha_t; evaluation calls leave alpha alone."""
    ffn = make_ffn(6).train()
    alpha, beta, xi = 0.05, 0.9, 0.5
    seen = []
    for step in range(5):
        x, mask = padded_batch(10 + step, [9, 4 + step, 2])
        with torch.no_grad():
            want = reference(ffn, x, mask, alpha)
            _, aux = ffn(x, mask)
        assert aux.loss.item() == pytest.approx(float(want["loss"]), rel=1e-5)
        alpha = beta * alpha + (1 - beta) * xi * want["dropped_fraction"]
        assert ffn.aux_coefficient.item() == pytest.approx(alpha, rel=1e-6)
        seen.append(alpha)
    assert len(set(seen)) == 5  # the drop rates moved it
    ffn.eval()
    with torch.no_grad():
        ffn(*padded_batch(30, [9, 9]))
    assert ffn.aux_coefficient.item() == pytest.approx(alpha, rel=1e-6)
    assert "aux_coefficient" in ffn.state_dict()  # a checkpoint keeps it


def _distance_to_reference(ffn: SkyworkMoEFFN) -> float:
    x, mask = padded_batch(7, LENGTHS)
    with torch.no_grad():
        y, _ = ffn(x, mask)
        return float((y - reference(ffn, x, mask, 0.05)["y"]).abs().max())


def _mutant_population_std(logits: torch.Tensor, scale: float) -> torch.Tensor:
    centred = logits - logits.mean(-1, keepdim=True)
    return scale * centred / logits.std(-1, keepdim=True, correction=0)


def _mutant_scale_ignored(logits: torch.Tensor, scale: float) -> torch.Tensor:
    centred = logits - logits.mean(-1, keepdim=True)
    return centred / logits.std(-1, keepdim=True)


@pytest.mark.parametrize(
    "mutant",
    [
        pytest.param(lambda logits, scale: logits, id="normalisation_skipped"),
        pytest.param(_mutant_scale_ignored, id="lambda_ignored"),
        pytest.param(_mutant_population_std, id="population_std"),
    ],
)
def test_the_reference_catches_a_mutated_gate(mutant, monkeypatch) -> None:
    ffn = make_ffn(8).eval()
    assert _distance_to_reference(ffn) < 1e-5
    monkeypatch.setattr(skywork, "normalized_logits", mutant)
    assert _distance_to_reference(ffn) > 1e-3


def test_the_reference_catches_a_capacity_counted_over_the_batch(monkeypatch) -> None:
    """Mutant: one budget for the flattened batch (Switch's old rule) instead of per sequence."""
    ffn = make_ffn(8).eval()
    original = skywork.sequence_capacity

    def over_the_batch(lengths, experts, factor, per_token, minimum=0):
        total = original(lengths.sum()[None], experts, factor, per_token, minimum)
        return total.expand(lengths.shape)

    def one_group(group, capacity, priority, groups):
        return keep(group % E, capacity, priority, E)

    keep = skywork.keep_within_capacity
    monkeypatch.setattr(skywork, "sequence_capacity", over_the_batch)
    monkeypatch.setattr(skywork, "keep_within_capacity", one_group)
    assert _distance_to_reference(ffn) > 1e-3


def test_a_sequence_routes_the_same_alone_and_in_a_batch() -> None:
    ffn = make_ffn(9).eval()
    x, mask = padded_batch(11, [9, 7, 3])
    with torch.no_grad():
        together, _ = ffn(x, mask)
        for b, n in enumerate([9, 7, 3]):
            alone, _ = ffn(x[b : b + 1, :n], mask[b : b + 1, :n])
            torch.testing.assert_close(alone[0], together[b, :n], rtol=1e-6, atol=1e-6)


def test_later_tokens_do_not_change_earlier_outputs() -> None:
    """Position-order capacity: token t's slot depends on tokens <= t only."""
    ffn = make_ffn(12, capacity_factor=0.5).eval()
    x, mask = padded_batch(13, [9, 9])
    changed = x.clone()
    changed[:, 5:] = torch.randn(2, 4, D)
    with torch.no_grad():
        before, aux = ffn(x, mask)
        after, _ = ffn(changed, mask)
    assert aux.stats["dropped_fraction"].item() > 0
    torch.testing.assert_close(after[:, :5], before[:, :5], rtol=0, atol=0)
    assert not torch.allclose(after[:, 5:], before[:, 5:])


def test_fields_and_shape_checks() -> None:
    cfg = ModelConfig(dim=16, ffn_dim=32, experts=4, top_k=2, balance_loss_weight=0.02)
    made = skywork_config(cfg, SkyworkFields(gate_scale=2.0))
    assert (made.hidden, made.experts, made.top_k) == (8, 4, 2)
    assert (made.gate_scale, made.alpha_init) == (2.0, 0.02)
    assert skywork_config(ModelConfig()).hidden == 32  # the UoE release's 4 experts of 32
    with pytest.raises(InputError, match="aux_smoothing"):
        SkyworkFields(aux_smoothing=1.0)
    with pytest.raises(InputError, match="gate_scale"):
        SkyworkFields(gate_scale=0.0)
    with pytest.raises(InputError, match="top_k"):
        skywork_config(ModelConfig(experts=2, top_k=3))
    model = build_skywork_moe(cfg, ModelTask(3, 11, 1, 16))
    assert isinstance(model.encoder.blocks[0].ffn, SkyworkMoEFFN)


def test_a_swiglu_width_the_down_gemm_cannot_align_runs_on_a_kernel_that_takes_it() -> None:
    """Hidden 6: the up weight (D, 2H = 12) suits torch._grouped_mm, the down weight (6, D) not;
    the part's one kernel must take both (it picked `torch` and raised before)."""
    ffn = make_ffn(14, hidden=6)
    assert ffn.gemm_kernel(rows=12) != "torch"
    x, mask = padded_batch(15, [9, 4])
    y, _ = ffn(x, mask)
    y.sum().backward()
