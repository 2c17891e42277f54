"""DeepSeekMoE's and DeepSeek-V3's FFN parts against looped references written from the papers'
equations (2401.06066 eqs. 9-14; 2412.19437 eqs. 12-20), sharing no code with the parts: plain
Python loops over tokens and experts, expert choice by sorting Python floats.

Checked: block outputs and gradients (input and every parameter) on random weights with padded
batches; tokens per expert, dropped fraction and the balance losses; the V3 bias trajectory
over several training steps (routing with the old bias, update over real tokens, none in eval);
group-limited routing; a sequence's output alone and inside a batch. Each routing rule has
MUTANTS (a subclass or a patched function with the rule subtly changed) that the same
reference comparison must catch.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.deepseek import routing as ds_routing
from models.deepseek.moe import DeepSeekFFNConfig, RoutedExperts, deepseek_ffn
from models.moe.routing import Routing, balance_loss

D, WIDTH, B, L = 8, 6, 3, 7
LENGTHS = [7, 4, 1]


def _mask(lengths: list[int] = LENGTHS, length: int = L) -> torch.Tensor:
    return torch.tensor([[t < n for t in range(length)] for n in lengths])  # (B, L)


def _cfg(router: str, **kw) -> DeepSeekFFNConfig:
    base = dict(
        dim=D, expert_width=WIDTH, routed_experts=5, active_experts=2, shared_experts=2,
        router=router, balance_weight=0.3 if router == "softmax" else 0.2,
    )  # fmt: skip
    base.update(kw)
    return DeepSeekFFNConfig(**base)


def _parts(part: torch.nn.Module) -> tuple[torch.nn.Module | None, RoutedExperts]:
    """(shared child or None, routed child) of a built FFN part."""
    if isinstance(part, RoutedExperts):
        return None, part
    return part.shared, part.routed


# ---- the looped reference ---------------------------------------------------------------------


def _silu(v: torch.Tensor) -> torch.Tensor:
    return v * torch.sigmoid(v)


def _routed_expert(routed: RoutedExperts, i: int, u: torch.Tensor) -> torch.Tensor:
    """FFN_i(u) = W2 (SiLU(u W1) * u W3), W1 | W3 the two column halves of w_up[i]."""
    w = routed.w_up[i]  # (D, 2 WIDTH): [gate | up]
    h = w.shape[1] // 2
    return (_silu(u @ w[:, :h]) * (u @ w[:, h:])) @ routed.w_down[i]


def _shared(shared: torch.nn.Module | None, u: torch.Tensor) -> torch.Tensor:
    if shared is None:
        return torch.zeros_like(u)
    return (_silu(shared.w1.weight @ u) * (shared.w3.weight @ u)) @ shared.w2.weight.T


def _logits(routed: RoutedExperts, u: torch.Tensor) -> list[torch.Tensor]:
    return [torch.dot(routed.router.weight[i], u) for i in range(routed.router.weight.shape[0])]


def _top(values: list[float], k: int, allowed: list[int] | None = None) -> list[int]:
    """Indices of the k largest values (among `allowed`), by sorting Python floats."""
    pool = range(len(values)) if allowed is None else allowed
    return sorted(pool, key=lambda i: -values[i])[:k]


def _softmax(logits: list[torch.Tensor]) -> list[torch.Tensor]:
    top = max(float(v.detach()) for v in logits)
    exps = [torch.exp(v - top) for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def ds_moe_reference(part, x, mask, k, alpha1):
    """DeepSeekMoE (2401.06066): h = sum_shared FFN(u) + sum_i g_i FFN_i(u), g_i = s_i for the
    top-k of s = softmax(u e), else 0; loss alpha1 sum_i f_i P_i, f_i = N'/(K'T) count_i,
    P_i = mean_t s_i. Returns (y (B, L, D), loss, tokens per expert)."""
    shared, routed = _parts(part)
    experts = routed.router.weight.shape[0]
    out = [[None] * x.shape[1] for _ in range(x.shape[0])]
    counts = [0] * experts
    prob_sum = [0.0] * experts
    tokens = 0
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            u = x[b, t]
            y = _shared(shared, u)
            if mask[b, t]:
                tokens += 1
                s = _softmax(_logits(routed, u))
                for i in _top([float(v.detach()) for v in s], k):
                    y = y + s[i] * _routed_expert(routed, i, u)
                    counts[i] += 1
                for i in range(experts):
                    prob_sum[i] = prob_sum[i] + s[i]
            out[b][t] = y
    y = torch.stack([torch.stack(row) for row in out])
    loss = sum(experts / (k * tokens) * counts[i] * (prob_sum[i] / tokens) for i in range(experts))
    return y, alpha1 * loss, counts


def _v3_choose(s: list[float], bias: list[float], k: int, groups: int, keep: int) -> list[int]:
    """Top-k of s + b, within the `keep` groups whose two best s + b sum highest."""
    biased = [s[i] + bias[i] for i in range(len(s))]
    if groups == 1:
        return _top(biased, k)
    size = len(s) // groups
    group_score = []
    for g in range(groups):
        members = sorted((biased[i] for i in range(g * size, (g + 1) * size)), reverse=True)
        group_score.append(members[0] + members[1])
    kept = _top(group_score, keep)
    allowed = [i for g in kept for i in range(g * size, (g + 1) * size)]
    return _top(biased, k, allowed)


def v3_reference(part, x, mask, k, alpha, bias, *, scaling=1.0, groups=1, keep=1):
    """DeepSeek-V3 (2412.19437): s = sigmoid(u e); chosen = top-k of s + b (group-limited);
    g_i = s_i / sum_chosen s_j * scaling; sequence-wise loss alpha * mean over sequences of
    sum_i f_i P_i, f_i = N_r/(K_r T_b) count_i, P_i = mean_t s_i / sum_j s_j. Returns (y, loss,
    tokens per expert of the call)."""
    shared, routed = _parts(part)
    experts = routed.router.weight.shape[0]
    out = [[None] * x.shape[1] for _ in range(x.shape[0])]
    counts = [0] * experts
    seq_losses = []
    for b in range(x.shape[0]):
        seq_counts = [0] * experts
        share_sum = [0.0] * experts
        seq_tokens = 0
        for t in range(x.shape[1]):
            u = x[b, t]
            y = _shared(shared, u)
            if mask[b, t]:
                seq_tokens += 1
                s = [torch.sigmoid(v) for v in _logits(routed, u)]
                chosen = _v3_choose([float(v.detach()) for v in s], bias, k, groups, keep)
                total = sum(s[i] for i in chosen)
                for i in chosen:
                    y = y + s[i] / total * scaling * _routed_expert(routed, i, u)
                    seq_counts[i] += 1
                    counts[i] += 1
                all_s = sum(s)
                for i in range(experts):
                    share_sum[i] = share_sum[i] + s[i] / all_s
            out[b][t] = y
        if seq_tokens:
            seq_losses.append(
                sum(
                    experts / (k * seq_tokens) * seq_counts[i] * (share_sum[i] / seq_tokens)
                    for i in range(experts)
                )
            )
    y = torch.stack([torch.stack(row) for row in out])
    return y, alpha * sum(seq_losses) / len(seq_losses), counts


def bias_reference(bias: list[float], counts: list[int], gamma: float) -> list[float]:
    """b_i += gamma * sign(mean load - load_i)."""
    mean = sum(counts) / len(counts)
    return [b + gamma * ((mean > c) - (mean < c)) for b, c in zip(bias, counts, strict=True)]


# ---- comparison helpers ----------------------------------------------------------------------


def _random_part(cfg: DeepSeekFFNConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    part = deepseek_ffn(cfg)
    with torch.no_grad():  # router logits spread enough that the choice is not a near tie
        _parts(part)[1].router.weight.normal_(0.0, 1.0)
    return part


def _outputs_and_grads(fn, part, x, mask, readout):
    """(y, loss, grads of x and of every parameter) of (y * readout).sum() + loss."""
    part.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y, loss = fn(x, mask)
    ((y * readout).sum() + loss).backward()
    grads = {"x": x.grad.clone()}
    grads.update({n: p.grad.clone() for n, p in part.named_parameters() if p.grad is not None})
    return y.detach(), loss.detach(), grads


def _compare(part, ours, reference, x, mask) -> None:
    torch.manual_seed(9)
    readout = torch.randn_like(x)
    y, loss, grads = _outputs_and_grads(ours, part, x, mask, readout)
    y_ref, loss_ref, grads_ref = _outputs_and_grads(reference, part, x, mask, readout)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-7)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-6, msg=name)


def _ours(part):
    def run(x, mask):
        y, aux = part(x, mask)
        return y, aux.loss

    return run


def _differs(part, ours, reference, x, mask) -> bool:
    """True when the part's output or loss is not the reference's."""
    with torch.no_grad():
        y, loss = ours(x, mask)
        y_ref, loss_ref = reference(x, mask)
    return not (torch.allclose(y, y_ref, atol=1e-5) and torch.allclose(loss, loss_ref, atol=1e-7))


# ---- DeepSeekMoE ------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [2, 0])
def test_deepseek_moe_equals_the_looped_reference(shared: int) -> None:
    cfg = _cfg("softmax", shared_experts=shared)
    part = _random_part(cfg)
    x, mask = torch.randn(B, L, D), _mask()

    def reference(x, mask):
        y, loss, _ = ds_moe_reference(part, x, mask, cfg.active_experts, cfg.balance_weight)
        return y, loss

    _compare(part, _ours(part), reference, x, mask)
    _, aux = part(x, mask)
    _, loss, counts = ds_moe_reference(part, x, mask, cfg.active_experts, cfg.balance_weight)
    assert aux.stats["tokens_per_expert"].tolist() == counts
    assert sum(counts) == cfg.active_experts * sum(LENGTHS)  # padding never routed
    assert float(aux.stats["dropped_fraction"]) == 0.0
    torch.testing.assert_close(aux.stats["aux_loss"], loss / cfg.balance_weight)


def test_deepseek_moe_gates_are_not_renormalised() -> None:
    logits = torch.randn(11, 6)
    got = ds_routing.softmax_top_k(logits, 3)
    assert (got.gate.sum(-1) < 1).all()
    for t in range(11):
        s = _softmax(list(logits[t]))
        chosen = _top([float(v.detach()) for v in s], 3)
        assert got.expert[t].tolist() == chosen
        torch.testing.assert_close(got.gate[t], torch.stack([s[i] for i in chosen]))


class _RenormalisedGates(RoutedExperts):
    """MUTANT: gates renormalised over the top-k (Mixtral's rule, not DeepSeekMoE's)."""

    def route(self, logits: torch.Tensor) -> Routing:
        r = super().route(logits)
        return Routing(r.expert, r.gate / r.gate.sum(-1, keepdim=True), r.chosen)


class _BalanceWithoutNPrimeOverK(RoutedExperts):
    """MUTANT: the expert-level loss's f_i without its N'/K' factor (f_i = count_i / T)."""

    def balance(self, logits, chosen, sequence, sequences):
        k, experts = chosen.shape[1], logits.shape[1]
        return super().balance(logits, chosen, sequence, sequences) * k / experts


class _SigmoidGates(RoutedExperts):
    """MUTANT: sigmoid affinities instead of the softmax over the routed experts (V3's gate)."""

    def route(self, logits: torch.Tensor) -> Routing:
        gate, chosen = torch.sigmoid(logits).topk(self.ds.active_experts, dim=-1)
        return Routing(chosen, gate, chosen)


@pytest.mark.parametrize("mutant", [_RenormalisedGates, _BalanceWithoutNPrimeOverK, _SigmoidGates])
def test_deepseek_moe_reference_catches_the_mutants(mutant: type[RoutedExperts]) -> None:
    cfg = _cfg("softmax", shared_experts=0)
    good = _random_part(cfg)
    bad = mutant(cfg)
    bad.load_state_dict(good.state_dict())
    x, mask = torch.randn(B, L, D), _mask()

    def reference(x, mask):
        y, loss, _ = ds_moe_reference(bad, x, mask, cfg.active_experts, cfg.balance_weight)
        return y, loss

    assert not _differs(good, _ours(good), reference, x, mask)  # the reference is right
    assert _differs(bad, _ours(bad), reference, x, mask), mutant.__doc__


# ---- DeepSeek-V3 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routed", "k", "groups", "keep", "scaling"),
    [(5, 2, 1, 1, 1.0), (8, 3, 4, 2, 2.5), (6, 2, 3, 1, 1.0)],
)
def test_v3_equals_the_looped_reference(routed, k, groups, keep, scaling) -> None:
    cfg = _cfg(
        "sigmoid_bias", routed_experts=routed, active_experts=k, groups=groups,
        topk_groups=keep, routed_scaling=scaling, bias_update_speed=0.0,
    )  # fmt: skip
    part = _random_part(cfg)
    routed_part = _parts(part)[1]
    with torch.no_grad():  # a bias of the size of the affinities' spread moves the choice
        routed_part.expert_bias.copy_(torch.randn(routed) * 0.3)
    bias = routed_part.expert_bias.tolist()
    x, mask = torch.randn(B, L, D), _mask()

    def reference(x, mask):
        y, loss, _ = v3_reference(
            part, x, mask, k, cfg.balance_weight, bias, scaling=scaling, groups=groups, keep=keep
        )
        return y, loss

    _compare(part, _ours(part), reference, x, mask)
    _, aux = part(x, mask)
    _, _, counts = v3_reference(
        part, x, mask, k, cfg.balance_weight, bias, scaling=scaling, groups=groups, keep=keep
    )
    assert aux.stats["tokens_per_expert"].tolist() == counts
    assert float(aux.stats["dropped_fraction"]) == 0.0


def test_v3_group_limit_keeps_each_token_within_its_groups() -> None:
    torch.manual_seed(3)
    logits = torch.randn(40, 8)
    got = ds_routing.sigmoid_bias_top_k(logits, torch.zeros(8), 3, groups=4, topk_groups=2)
    free = ds_routing.sigmoid_bias_top_k(logits, torch.zeros(8), 3)
    assert all(len({e // 2 for e in row}) <= 2 for row in got.expert.tolist())
    assert not torch.equal(got.expert.sort(-1).values, free.expert.sort(-1).values)
    torch.testing.assert_close(got.gate.sum(-1), torch.ones(40))


def test_v3_bias_trajectory_over_training_steps_equals_the_reference() -> None:
    """Each training-mode forward routes with the old bias, then moves it by gamma * sign(mean
    load - load) over that call's real tokens; eval forwards never move it."""
    gamma = 0.05
    cfg = _cfg("sigmoid_bias", routed_experts=6, active_experts=2, bias_update_speed=gamma)
    part = _random_part(cfg)
    routed = _parts(part)[1]
    optimizer = torch.optim.SGD(part.parameters(), lr=0.05)
    bias = [0.0] * 6
    gen = torch.Generator().manual_seed(4)
    moved = 0
    for _ in range(6):
        x = torch.randn(B, L, D, generator=gen)
        lengths = torch.randint(1, L + 1, (B,), generator=gen).tolist()
        mask = _mask(lengths)
        with torch.no_grad():
            y_ref, _, counts = v3_reference(part, x, mask, 2, cfg.balance_weight, bias)
        part.train()
        y, aux = part(x, mask)
        torch.testing.assert_close(y.detach(), y_ref, rtol=1e-5, atol=1e-6)  # the old bias
        new_bias = bias_reference(bias, counts, gamma)
        torch.testing.assert_close(routed.expert_bias, torch.tensor(new_bias), atol=1e-6, rtol=0)
        moved += new_bias != bias
        bias = new_bias
        ((y**2).mean() + aux.loss).backward()  # a real step: the weights move too
        optimizer.step()
        optimizer.zero_grad()
        assert routed.expert_bias.grad is None and not routed.expert_bias.requires_grad
        part.eval()
        with torch.no_grad():
            part(x, mask)
        assert routed.expert_bias.tolist() == pytest.approx(bias, abs=1e-6), "eval moved it"
    assert moved == 6
    assert any(n.endswith("expert_bias") for n in part.state_dict())  # saved with the model


def test_v3_sequence_loss_and_output_of_a_sequence_do_not_depend_on_its_batch_mates() -> None:
    cfg = _cfg("sigmoid_bias", bias_update_speed=0.01)
    part = _random_part(cfg).train()
    x, mask = torch.randn(B, L, D), _mask()
    y_batch, _ = part(x, mask)
    part_alone = _random_part(cfg).train()
    y_alone, aux_alone = part_alone(x[1:2], mask[1:2])
    torch.testing.assert_close(y_alone, y_batch[1:2], rtol=1e-5, atol=1e-6)
    _, loss_alone, _ = v3_reference(part_alone, x[1:2], mask[1:2], 2, cfg.balance_weight, [0.0] * 5)
    torch.testing.assert_close(aux_alone.loss, loss_alone)


class _SoftmaxAffinities(RoutedExperts):
    """MUTANT: softmax affinities instead of sigmoid (DeepSeek-V2's gate), all else as V3."""

    def route(self, logits: torch.Tensor) -> Routing:
        scores = torch.softmax(logits, dim=-1)  # (T, E)
        chosen = (scores + self.expert_bias).topk(self.ds.active_experts, dim=-1).indices
        picked = scores.gather(1, chosen)
        return Routing(chosen, picked / picked.sum(-1, keepdim=True), chosen)


class _BiasInTheGates(RoutedExperts):
    """MUTANT: the bias added to the gate weights too (it should only pick the experts)."""

    def route(self, logits: torch.Tensor) -> Routing:
        r = super().route(logits)
        picked = torch.sigmoid(logits).gather(1, r.chosen) + self.expert_bias[r.chosen]
        return Routing(r.expert, picked / picked.sum(-1, keepdim=True), r.chosen)


class _GatesNotRenormalised(RoutedExperts):
    """MUTANT: the gates left as the raw sigmoids (no renormalisation over the selected)."""

    def route(self, logits: torch.Tensor) -> Routing:
        r = super().route(logits)
        return Routing(r.expert, torch.sigmoid(logits).gather(1, r.chosen), r.chosen)


@pytest.mark.parametrize("mutant", [_SoftmaxAffinities, _BiasInTheGates, _GatesNotRenormalised])
def test_v3_reference_catches_the_routing_mutants(mutant: type[RoutedExperts]) -> None:
    cfg = _cfg("sigmoid_bias", shared_experts=0)
    good = _random_part(cfg)
    with torch.no_grad():
        good.expert_bias.copy_(torch.randn(5) * 0.3)
    bad = mutant(cfg)
    bad.load_state_dict(good.state_dict())
    x, mask = torch.randn(B, L, D), _mask()
    bias = good.expert_bias.tolist()

    def reference(x, mask):
        y, loss, _ = v3_reference(bad, x, mask, 2, cfg.balance_weight, bias)
        return y, loss

    assert not _differs(good, _ours(good), reference, x, mask)
    assert _differs(bad, _ours(bad), reference, x, mask), mutant.__doc__


def test_v3_reference_catches_a_bias_update_of_the_wrong_sign(monkeypatch) -> None:
    """MUTANT: b_i += gamma * sign(load_i - mean load) (overloaded experts made more likely)."""
    cfg = _cfg("sigmoid_bias", shared_experts=0, bias_update_speed=0.05)
    part = _random_part(cfg).train()
    good_step = ds_routing.bias_step

    def wrong(bias, chosen, gamma):
        return 2 * bias - good_step(bias, chosen, gamma)

    monkeypatch.setattr("models.deepseek.moe.bias_step", wrong)
    x, mask = torch.randn(B, L, D), _mask()
    with torch.no_grad():
        _, _, counts = v3_reference(part, x, mask, 2, cfg.balance_weight, [0.0] * 5)
        part(x, mask)
    want = torch.tensor(bias_reference([0.0] * 5, counts, 0.05))
    assert want.abs().sum() > 0
    assert not torch.allclose(part.expert_bias, want)


def test_balance_losses_are_one_at_uniform_routing() -> None:
    """Both normalisations (N'/(K'T) and N_r/(K_r T)) give 1 when every expert gets an equal
    share of the assignments and the affinities are flat."""
    logits = torch.zeros(6, 3)
    chosen = torch.tensor([[0], [1], [2], [0], [1], [2]])
    seq = torch.tensor([0, 0, 0, 1, 1, 1])
    assert math.isclose(
        float(ds_routing.sequence_balance_loss(logits, chosen, seq, 2)), 1.0, rel_tol=1e-6
    )
    # DeepSeekMoE's loss is models.moe.routing.balance_loss, reused:
    assert math.isclose(float(balance_loss(logits, chosen)), 1.0, rel_tol=1e-6)
