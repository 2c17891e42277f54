"""MoA and SwitchHead against looped references written from their papers' equations.

Each reference walks the tokens, heads and experts one by one in plain Python (scalar loops
over the keys, its own top-k by sorting, its own softmax and sigmoid), sharing no code with the
parts; outputs, input and weight gradients and routing statistics must agree on random weights
for a padded batch, without and with the causal mask. A mutant of each routing rule (a
subclass that changes one line of it) must be caught by the same comparison.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.measure.flops.analytic import analytic_flops
from bench.measure.flops.counted import count_flops
from models.config import ModelConfig, ModelTask
from models.layers import moa, switchhead
from models.layers.moa import MixtureOfAttentionHeads
from models.layers.switchhead import SwitchHeadAttention
from models.registry import build_model

DIM, HEAD_DIM, EXPERTS, TOP_K = 8, 4, 4, 2
LENGTHS = [6, 4, 1]  # a padded batch: three sequences, the longest unpadded
# float64 everywhere but the routers, which compute in float32 (as every routed part here).
CLOSE = {"rtol": 1e-5, "atol": 1e-6}


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), max(LENGTHS), DIM, generator=gen, dtype=torch.float64)
    mask = torch.arange(max(LENGTHS))[None, :] < torch.tensor(LENGTHS)[:, None]  # (B, L)
    return x, mask


def _randomise(part: torch.nn.Module, seed: int) -> None:
    """Random weights and biases (no zero bias hides a bug), in float64."""
    part.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in part.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.5)


def _top_k(scores: list[float], k: int) -> list[int]:
    """Indices of the k largest scores, largest first (ties: lower index first)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


def _visible(mask: torch.Tensor, b: int, t: int, causal: bool) -> list[int]:
    return [s for s in range(mask.shape[1]) if mask[b, s] and (not causal or s <= t)]


def _attend(query: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor]):
    """softmax_s(q . k_s / sqrt(d)) weighted sum of v_s, one key at a time."""
    scale = 1.0 / math.sqrt(query.shape[0])
    scores = [torch.dot(query, key) * scale for key in keys]
    top = max(float(s.detach()) for s in scores)
    weights = [torch.exp(s - top) for s in scores]
    total = sum(weights)
    return sum(w / total * v for w, v in zip(weights, values, strict=True))


# --- MoA -----------------------------------------------------------------------------------


def moa_reference(part: MixtureOfAttentionHeads, x: torch.Tensor, mask: torch.Tensor, causal):
    """y_t = sum_{e in topk} softmax_topk(x_t W_g)_e Attn(x_t W_q[e], X W_k, X W_v) W_o[e] + b_o
    (padding: b_o only), and the routing statistics, by loops."""
    w_g = part.router.weight  # (E, D)
    w_kv, b_kv = part.kv.weight, part.kv.bias  # (2 Dh, D), (2 Dh,)
    dh = part.head_dim
    batch, length, _ = x.shape
    rows, counts, probs_sum, lse_sq, real = [], [0] * part.experts, None, 0.0, 0
    for b in range(batch):
        keys = [w_kv[:dh] @ x[b, s] + b_kv[:dh] for s in range(length)]
        values = [w_kv[dh:] @ x[b, s] + b_kv[dh:] for s in range(length)]
        for t in range(length):
            y = part.out_bias.clone()
            if mask[b, t]:
                real += 1
                logits = [torch.dot(w_g[e], x[b, t]) for e in range(part.experts)]
                chosen = _top_k([float(v.detach()) for v in logits], part.top_k)
                top = max(float(logits[e].detach()) for e in chosen)
                exps = {e: torch.exp(logits[e] - top) for e in chosen}
                norm = sum(exps.values())
                seen = _visible(mask, b, t, causal)
                for e in chosen:
                    counts[e] += 1
                    q = x[b, t] @ part.w_q[e]  # (Dh,)
                    o = _attend(q, [keys[s] for s in seen], [values[s] for s in seen])
                    y = y + exps[e] / norm * (o @ part.w_o[e])
                full = torch.stack(logits).detach()
                probs = torch.softmax(full, 0)
                probs_sum = probs if probs_sum is None else probs_sum + probs
                lse_sq += float(torch.logsumexp(full, 0)) ** 2
            rows.append(y)
    y = torch.stack(rows).view(batch, length, -1)
    assignments = real * part.top_k
    balance = part.experts * sum(
        counts[e] / assignments * float(probs_sum[e]) / real for e in range(part.experts)
    )
    return y, {"tokens_per_expert": counts, "aux_loss": balance, "z_loss": lse_sq / real}


class MoAFullSoftmaxGates(MixtureOfAttentionHeads):
    """Mutant: the gates are the full softmax's probabilities of the chosen experts, not
    renormalised over the k (a token's gates then sum to less than 1)."""

    def route(self, logits):
        chosen = logits.topk(self.top_k, dim=-1).indices
        return chosen, torch.softmax(logits, -1).gather(1, chosen)


def _moa(cls=MixtureOfAttentionHeads, causal: bool = False) -> MixtureOfAttentionHeads:
    part = cls(
        DIM, HEAD_DIM, EXPERTS, TOP_K, 0.0, balance_loss_weight=0.1, z_loss_weight=0.01,
        causal=causal,
    )  # fmt: skip
    _randomise(part, seed=3)
    return part


def _outputs_and_grads(part, reference, causal):
    """(part y, reference y, part grads, reference grads) for the same upstream gradient."""
    x, mask = _batch(seed=5)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
    got_x = x.clone().requires_grad_()
    y, aux = part(got_x, mask)
    loss = (y * upstream).sum() + (aux.loss if aux.loss is not None else 0.0)
    got = torch.autograd.grad(loss, [got_x, *part.parameters()])
    ref_x = x.clone().requires_grad_()
    y_ref, stats = reference(part, ref_x, mask, causal)
    ref_loss = (y_ref * upstream).sum()
    ref = torch.autograd.grad(ref_loss, [ref_x, *part.parameters()], allow_unused=True)
    return y, y_ref, got, ref, aux, stats


@pytest.mark.parametrize("causal", [False, True])
def test_moa_output_and_gradients_equal_the_looped_equations(causal: bool) -> None:
    part = _moa(causal=causal)
    part.balance_loss_weight = part.z_loss_weight = 0.0  # the loss gradients: next test
    y, y_ref, got, ref, _aux, _stats = _outputs_and_grads(part, moa_reference, causal)
    torch.testing.assert_close(y, y_ref, **CLOSE)
    names = ["x", *(n for n, _ in part.named_parameters())]
    for name, g, r in zip(names, got, ref, strict=True):
        r = torch.zeros_like(g) if r is None else r
        torch.testing.assert_close(g, r, **CLOSE, msg=f"gradient of {name}")


def test_moa_routing_statistics_and_losses_equal_the_looped_counts() -> None:
    part = _moa()
    x, mask = _batch(seed=5)
    _y, aux = part(x, mask)
    _y_ref, stats = moa_reference(part, x, mask, causal=False)
    assert aux.stats["tokens_per_expert"].tolist() == stats["tokens_per_expert"]
    assert sum(stats["tokens_per_expert"]) == sum(LENGTHS) * TOP_K  # padding never routed
    assert float(aux.stats["dropped_fraction"]) == 0.0
    assert float(aux.stats["aux_loss"]) == pytest.approx(stats["aux_loss"], rel=1e-6)
    assert float(aux.stats["z_loss"]) == pytest.approx(stats["z_loss"], rel=1e-6)
    expected = 0.1 * stats["aux_loss"] + 0.01 * stats["z_loss"]
    assert float(aux.loss.detach()) == pytest.approx(expected, rel=1e-6)


def test_moa_mutant_with_unrenormalised_gates_is_caught() -> None:
    part = _moa(MoAFullSoftmaxGates)
    x, mask = _batch(seed=5)
    y, _ = part(x, mask)
    y_ref, _ = moa_reference(part, x, mask, causal=False)
    assert (y - y_ref).abs().max() > 1e-3


# --- SwitchHead ----------------------------------------------------------------------------


def switchhead_reference(part: SwitchHeadAttention, x: torch.Tensor, mask: torch.Tensor, causal):
    """Equations 9-12 of the paper by loops: per head, sigmoid-scored top-k value experts of
    each source token and output experts of each destination token; padding is no key and gets
    0. Also the (token, head) assignments per expert, head-major."""
    heads, dh, e_count, k = part.heads, part.head_dim, part.experts, part.top_k
    w_qk, w_s, w_d = part.qk.weight, part.source_selector.weight, part.dest_selector.weight
    batch, length, dim = x.shape
    counts_v, counts_o = [0] * (heads * e_count), [0] * (heads * e_count)

    def gated(selector: torch.Tensor, token: torch.Tensor, h: int, counts: list[int]):
        logits = [torch.dot(selector[h * e_count + e], token) for e in range(e_count)]
        chosen = _top_k([float(v.detach()) for v in logits], k)
        for e in chosen:
            counts[h * e_count + e] += 1
        return [(e, 1.0 / (1.0 + torch.exp(-logits[e]))) for e in chosen]

    out = torch.zeros(batch, length, dim, dtype=x.dtype)
    for b in range(batch):
        for h in range(heads):
            q = [w_qk[h * dh : (h + 1) * dh] @ x[b, t] for t in range(length)]
            kk = [w_qk[(heads + h) * dh : (heads + h + 1) * dh] @ x[b, t] for t in range(length)]
            v = []
            for s in range(length):
                value = torch.zeros(dh, dtype=x.dtype)
                if mask[b, s]:
                    for e, g in gated(w_s, x[b, s], h, counts_v):
                        value = value + g * (x[b, s] @ part.w_v[h * e_count + e])
                v.append(value)
            for t in range(length):
                if not mask[b, t]:
                    continue
                seen = _visible(mask, b, t, causal)
                o = _attend(q[t], [kk[s] for s in seen], [v[s] for s in seen])
                for e, g in gated(w_d, x[b, t], h, counts_o):
                    out[b, t] = out[b, t] + g * (o @ part.w_o[h * e_count + e])
    return out, {"tokens_per_expert": counts_o, "value_tokens_per_expert": counts_v}


class SwitchHeadSoftmaxGates(SwitchHeadAttention):
    """Mutant: competitive gates, a softmax over each head's k selected logits, instead of
    each selected expert's own sigmoid."""

    def select(self, logits):
        top, chosen = logits.view(-1, self.heads, self.experts).topk(self.top_k, dim=-1)
        return chosen, torch.softmax(top, -1)


def _switchhead(cls=SwitchHeadAttention, causal: bool = False) -> SwitchHeadAttention:
    part = cls(DIM, 2, HEAD_DIM, EXPERTS, TOP_K, 0.0, causal=causal)
    _randomise(part, seed=4)
    return part


@pytest.mark.parametrize("causal", [False, True])
def test_switchhead_output_and_gradients_equal_the_looped_equations(causal: bool) -> None:
    part = _switchhead(causal=causal)
    y, y_ref, got, ref, _aux, _stats = _outputs_and_grads(part, switchhead_reference, causal)
    torch.testing.assert_close(y, y_ref, **CLOSE)
    names = ["x", *(n for n, _ in part.named_parameters())]
    for name, g, r in zip(names, got, ref, strict=True):
        r = torch.zeros_like(g) if r is None else r
        torch.testing.assert_close(g, r, **CLOSE, msg=f"gradient of {name}")


def test_switchhead_routing_statistics_equal_the_looped_counts() -> None:
    part = _switchhead()
    x, mask = _batch(seed=5)
    _y, aux = part(x, mask)
    _y_ref, stats = switchhead_reference(part, x, mask, causal=False)
    assert aux.stats["tokens_per_expert"].tolist() == stats["tokens_per_expert"]
    assert aux.stats["value_tokens_per_expert"].tolist() == stats["value_tokens_per_expert"]
    assert sum(stats["tokens_per_expert"]) == sum(LENGTHS) * 2 * TOP_K  # padding never routed
    assert aux.loss is None


def test_switchhead_mutant_with_competitive_gates_is_caught() -> None:
    part = _switchhead(SwitchHeadSoftmaxGates)
    x, mask = _batch(seed=5)
    y, _ = part(x, mask)
    y_ref, _ = switchhead_reference(part, x, mask, causal=False)
    assert (y - y_ref).abs().max() > 1e-3


# --- both ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [_moa, _switchhead], ids=["moa", "switchhead"])
def test_causal_output_ignores_later_tokens_and_batch_mates(make) -> None:
    """Causal: changing tokens after t leaves outputs <= t unchanged (and the non-causal part
    does see them). Either form: a sequence alone gives what it gives inside the batch."""
    x, mask = _batch(seed=5)
    later = x.clone()
    later[:, 3:] += 1.0
    causal = make(causal=True)
    torch.testing.assert_close(causal(later, mask)[0][:, :3], causal(x, mask)[0][:, :3])
    open_ = make(causal=False)
    assert (open_(later, mask)[0][0, :3] - open_(x, mask)[0][0, :3]).abs().max() > 1e-6
    for part in (causal, open_):
        together = part(x, mask)[0]
        for b in range(x.shape[0]):
            alone = part(x[b : b + 1], mask[b : b + 1])[0]
            # To float32 rounding: the routers' vectorised float32 sigmoid/softmax may round a
            # batch's tail differently by an ulp.
            torch.testing.assert_close(alone[0], together[b], **CLOSE)


@pytest.mark.parametrize("impl", ["mm", "torch", "bmm"])
@pytest.mark.parametrize("name", ["moa", "switchhead"])
def test_counted_flops_equal_the_analytic_figure_on_every_kernel(name, impl, monkeypatch) -> None:
    """Exactly, on a padded batch, for each grouped-GEMM kernel (bmm multiplies padded rows:
    the analytic figure reads the rows the call multiplied)."""
    for module in (moa, switchhead):  # the parts import `choose` by name
        monkeypatch.setattr(module, "choose", lambda weight, rows=None: impl)
    torch.manual_seed(0)
    cfg = ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64)
    model = build_model(name, cfg, ModelTask(3, 20, 1, 24), {}).eval()
    tokens = (torch.randint(1, 20, (3, 24), generator=torch.Generator().manual_seed(0)),)
    lengths = (torch.tensor([24, 13, 2]),)
    analytic = []
    with torch.no_grad():
        counted = count_flops(
            lambda: analytic.append(analytic_flops(model, lambda: model(tokens, lengths)))
        )
    assert analytic[0].missing == ()
    assert counted.total == sum(analytic[0].components.values()), (counted.by_op, analytic)
