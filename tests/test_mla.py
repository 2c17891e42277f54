"""Multi-head Latent Attention against a looped reference written from DeepSeek-V3's equations
(2412.19437 eqs. 1-11), sharing no code with the part: per batch row, per position, per head,
per key, in plain Python loops; RMSNorm and RoPE written out. Outputs and gradients on random
weights with padded batches, in both the bidirectional and the causal form; the causal form's
outputs at t do not move when later tokens change; MUTANTS (the wrong softmax scale, RoPE on
the wrong pairs, a per-head rotary key) that the reference catches; FLOPs against a count.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from models.deepseek import mla as mla_module
from models.deepseek.mla import MultiHeadLatentAttention
from models.layers.parts import NO_AUX

D, HEADS, Q_RANK, KV_RANK, NOPE, ROPE, V = 12, 2, 8, 6, 4, 6, 5
B, L = 3, 6
LENGTHS = [6, 4, 1]


def _part(causal: bool = False, seed: int = 0) -> MultiHeadLatentAttention:
    torch.manual_seed(seed)
    part = MultiHeadLatentAttention(
        D, HEADS, q_rank=Q_RANK, kv_rank=KV_RANK, nope_dim=NOPE, rope_dim=ROPE, v_dim=V,
        max_len=16, causal=causal,
    )  # fmt: skip
    with torch.no_grad():  # norm weights away from 1, so a missing norm weight shows
        part.q_norm.weight.uniform_(0.5, 1.5)
        part.kv_norm.weight.uniform_(0.5, 1.5)
    return part


def _mask(lengths: list[int] = LENGTHS) -> torch.Tensor:
    return torch.tensor([[t < n for t in range(L)] for n in lengths])  # (B, L)


# ---- the looped reference ---------------------------------------------------------------------


def _rms(v: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return v / torch.sqrt((v * v).mean() + eps) * weight


def _rope(v: torch.Tensor, t: int) -> torch.Tensor:
    """Turn each pair (v_2i, v_2i+1) by the angle t * 10000^(-2i/d)."""
    d = v.shape[0]
    out = []
    for i in range(d // 2):
        angle = t * 10000.0 ** (-2 * i / d)
        c, s = math.cos(angle), math.sin(angle)
        a, b = v[2 * i], v[2 * i + 1]
        out += [a * c - b * s, a * s + b * c]
    return torch.stack(out)


def mla_reference(part, x, mask, causal, *, scale=None, rope=_rope, shared_key=True):
    """u_t = W_O [o_t,1; ...], o_t,i = sum_j softmax_j([q^C; q^R] . [k^C; k^R_j] * scale) v_j,i
    over the real keys j (j <= t when causal); scale 1/sqrt(d_h + d_R)."""
    scale = scale if scale is not None else 1.0 / math.sqrt(NOPE + ROPE)
    wq_a, wq_b = part.wq_a.weight, part.wq_b.weight
    wkv_a, wkv_b, wo = part.wkv_a.weight, part.wkv_b.weight, part.wo.weight
    rows = []
    for b in range(x.shape[0]):
        queries, keys, values = [], [], []
        for t in range(x.shape[1]):
            h = x[b, t]
            c_q = _rms(wq_a @ h, part.q_norm.weight)  # (r_q,)
            q_all = wq_b @ c_q  # (H (d_h + d_R),): per head [nope | rope]
            down = wkv_a @ h  # (r_kv + d_R,): [c_KV | k^R before RoPE]
            c_kv = _rms(down[:KV_RANK], part.kv_norm.weight)
            k_rope_shared = rope(down[KV_RANK:], t)
            kv_all = wkv_b @ c_kv  # (H (d_h + d_v),): per head [k^C | v]
            q_heads, k_heads, v_heads = [], [], []
            for i in range(HEADS):
                q = q_all[i * (NOPE + ROPE) : (i + 1) * (NOPE + ROPE)]
                kv = kv_all[i * (NOPE + V) : (i + 1) * (NOPE + V)]
                k_rope = k_rope_shared if shared_key else rope(down[KV_RANK:] * (i + 1), t)
                q_heads.append(torch.cat([q[:NOPE], rope(q[NOPE:], t)]))
                k_heads.append(torch.cat([kv[:NOPE], k_rope]))
                v_heads.append(kv[NOPE:])
            queries.append(q_heads)
            keys.append(k_heads)
            values.append(v_heads)
        out_row = []
        for t in range(x.shape[1]):
            heads_out = []
            for i in range(HEADS):
                visible = [j for j in range(x.shape[1]) if mask[b, j] and (not causal or j <= t)]
                scores = [torch.dot(queries[t][i], keys[j][i]) * scale for j in visible]
                top = max(float(s.detach()) for s in scores)
                weights = [torch.exp(s - top) for s in scores]
                total = sum(weights)
                pairs = zip(weights, visible, strict=True)
                heads_out.append(sum(w / total * values[j][i] for w, j in pairs))
            out_row.append(wo @ torch.cat(heads_out))
        rows.append(torch.stack(out_row))
    return torch.stack(rows)


def _outputs_and_grads(fn, part, x, readout):
    part.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    (y * readout).sum().backward()
    grads = {"x": x.grad.clone()}
    grads.update({n: p.grad.clone() for n, p in part.named_parameters()})
    return y.detach(), grads


@pytest.mark.parametrize("causal", [False, True])
def test_mla_equals_the_looped_reference_with_gradients(causal: bool) -> None:
    part = _part(causal)
    torch.manual_seed(1)
    x, mask, readout = torch.randn(B, L, D), _mask(), torch.randn(B, L, D)
    y, grads = _outputs_and_grads(lambda x: part(x, mask)[0], part, x, readout)
    y_ref, grads_ref = _outputs_and_grads(
        lambda x: mla_reference(part, x, mask, causal), part, x, readout
    )
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-6)
    assert grads.keys() == grads_ref.keys() and len(grads) == 8  # x + 7 weights
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-4, atol=1e-6, msg=name)
    assert part(x, mask)[1] is NO_AUX


def test_padding_keys_are_masked_and_real_tokens_do_not_see_padding() -> None:
    part = _part().eval()
    x, mask = torch.randn(B, L, D), _mask()
    changed = x.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), D)
    with torch.no_grad():
        before, after = part(x, mask)[0], part(changed, mask)[0]
    torch.testing.assert_close(after[mask], before[mask])


def test_causal_outputs_do_not_see_later_tokens() -> None:
    part = _part(causal=True).eval()
    x, mask = torch.randn(B, L, D), torch.ones(B, L, dtype=torch.bool)
    with torch.no_grad():
        before = part(x, mask)[0]
        for t in range(L - 1):
            later = x.clone()
            later[:, t + 1 :] = torch.randn(B, L - t - 1, D)
            after = part(later, mask)[0]
            torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1])
            assert not torch.allclose(after[:, t + 1 :], before[:, t + 1 :])
        bidirectional = _part(causal=False).eval()(x, mask)[0]
    assert not torch.allclose(bidirectional[:, 0], before[:, 0])  # the mask does something


def _wrong_scale(part, monkeypatch) -> None:
    """MUTANT: softmax scale 1/sqrt(d_h), the no-position width, instead of 1/sqrt(d_h + d_R)."""
    sdpa = F.scaled_dot_product_attention

    def scaled(q, k, v, **kw):
        return sdpa(q, k, v, scale=1.0 / math.sqrt(NOPE), **kw)

    monkeypatch.setattr(mla_module.F, "scaled_dot_product_attention", scaled)


def _rotate_half(part, monkeypatch) -> None:
    """MUTANT: RoPE on the pairs (i, i + d/2) (the rotate-half layout) instead of DeepSeek's
    consecutive pairs (2i, 2i + 1)."""

    def half(x, cos, sin):
        n = x.shape[-1] // 2
        a, b = x[..., :n], x[..., n:]
        extra = x.dim() - 3
        cos = cos.view(cos.shape[0], *([1] * extra), n)
        sin = sin.view(sin.shape[0], *([1] * extra), n)
        return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)

    monkeypatch.setattr(mla_module, "apply_rope", half)


def _no_kv_norm(part, monkeypatch) -> None:
    """MUTANT: the joint KV latent c_KV used without its RMSNorm."""
    monkeypatch.setattr(part, "kv_norm", torch.nn.Identity())


@pytest.mark.parametrize("mutate", [_wrong_scale, _rotate_half, _no_kv_norm])
def test_the_reference_catches_the_mla_mutants(mutate, monkeypatch) -> None:
    part = _part()
    x, mask = torch.randn(B, L, D), _mask()
    with torch.no_grad():
        want = mla_reference(part, x, mask, False)
        torch.testing.assert_close(part(x, mask)[0], want, rtol=1e-5, atol=1e-6)
        mutate(part, monkeypatch)
        assert not torch.allclose(part(x, mask)[0], want, atol=1e-4), mutate.__doc__


def test_the_reference_needs_one_rotary_key_shared_by_the_heads() -> None:
    """The reference's rotary key is shared by the heads; a per-head key (here: scaled per
    head) gives another function, so the shared-key check above can fail."""
    part = _part()
    x, mask = torch.randn(B, L, D), _mask()
    with torch.no_grad():
        shared = mla_reference(part, x, mask, False)
        per_head = mla_reference(part, x, mask, False, shared_key=False)
    assert not torch.allclose(shared, per_head, atol=1e-4)


def test_analytic_flops_equal_the_counted_and_a_hand_count() -> None:
    part = _part().eval()
    x, mask = torch.randn(B, L, D), _mask()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        part(x, mask)
    analytic = part.analytic_flops(x.shape, NO_AUX)
    tokens = B * L
    hand = 2 * tokens * (
        D * Q_RANK
        + Q_RANK * HEADS * (NOPE + ROPE)
        + D * (KV_RANK + ROPE)
        + KV_RANK * HEADS * (NOPE + V)
        + HEADS * V * D
    ) + 2 * B * HEADS * L * L * (NOPE + ROPE + V)
    assert sum(analytic.values()) == hand == counter.get_total_flops()


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="even rope_dim"):
        MultiHeadLatentAttention(
            8, 2, q_rank=4, kv_rank=4, nope_dim=2, rope_dim=3, v_dim=4, max_len=8
        )
    part = _part()
    with pytest.raises(ValueError, match="rotary table"):
        part(torch.randn(1, 17, D), torch.ones(1, 17, dtype=torch.bool))
