from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from models.layers.attention import MultiHeadAttention
from models.layers.linformer import LinformerAttention
from models.layers.parts import lengths_to_mask

DIM, HEADS, LEN = 8, 2, 6
LENGTHS = torch.tensor([6, 4, 1])


def _linformer(proj_len: int, per_head: bool, max_len: int = LEN) -> LinformerAttention:
    torch.manual_seed(0)
    return LinformerAttention(DIM, HEADS, max_len, proj_len, per_head=per_head).eval()


def _reference(attn: LinformerAttention, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Hand-written Linformer, one example and head at a time, on the real tokens only."""
    wq, wk, wv = attn.qkv.weight.chunk(3)  # each (D, D)
    bq, bk, bv = attn.qkv.bias.chunk(3)
    dh = attn.head_dim
    outputs = []
    for b, n in enumerate(lengths.tolist()):
        heads = []
        for h in range(attn.heads):
            rows = slice(dh * h, dh * (h + 1))
            e = attn.key_proj[h] if attn.per_head else attn.key_proj  # (k, max_len)
            f = attn.value_proj[h] if attn.per_head else attn.value_proj
            q = x[b] @ wq[rows].T + bq[rows]  # (L, Dh)
            k = x[b, :n] @ wk[rows].T + bk[rows]  # (n, Dh): real keys only
            v = x[b, :n] @ wv[rows].T + bv[rows]
            keep = (e[:, :n].abs() + f[:, :n].abs()).sum(1) > 0  # slots touching real tokens
            k_slots = (e[:, :n] @ k)[keep]  # (k', Dh)
            v_slots = (f[:, :n] @ v)[keep]
            weights = torch.softmax(q @ k_slots.T / math.sqrt(dh), dim=-1)  # (L, k')
            heads.append(weights @ v_slots)
        outputs.append(attn.out(torch.cat(heads, dim=-1)))  # (L, D)
    return torch.stack(outputs)


@pytest.mark.parametrize("per_head", [False, True])
def test_identity_projections_with_k_equal_l_is_full_attention(per_head: bool) -> None:
    attn = _linformer(proj_len=1000, per_head=per_head)  # k >= L: k = L
    assert attn.proj_len == LEN
    with torch.no_grad():
        eye = torch.eye(LEN).expand_as(attn.key_proj)
        attn.key_proj.copy_(eye)
        attn.value_proj.copy_(eye)
    full = MultiHeadAttention(DIM, HEADS, attn_dropout=0.0).eval()
    full.load_state_dict({"qkv." + n: p for n, p in attn.qkv.state_dict().items()}, strict=False)
    full.out.load_state_dict(attn.out.state_dict())

    x = torch.randn(3, LEN, DIM)
    mask = lengths_to_mask(LENGTHS, LEN)
    y, aux = attn(x, mask)
    assert aux.loss is None and not aux.stats
    torch.testing.assert_close(y, full(x, mask)[0], atol=1e-5, rtol=1e-5)

    # And against an explicit masked softmax, independent of both modules' code paths.
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias  # (B, L, 3D)
    q, k, v = qkv.view(3, LEN, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / math.sqrt(DIM // HEADS)  # (B, H, L, L)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    expected = (scores.softmax(-1) @ v).transpose(1, 2).reshape(3, LEN, DIM) @ attn.out.weight.T
    torch.testing.assert_close(y, expected + attn.out.bias, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("per_head", [False, True])
def test_compressed_projection_matches_a_per_example_reference(per_head: bool) -> None:
    attn = _linformer(proj_len=3, per_head=per_head)
    x = torch.randn(3, LEN, DIM)
    y, _ = attn(x, lengths_to_mask(LENGTHS, LEN))
    torch.testing.assert_close(y, _reference(attn, x, LENGTHS), atol=1e-5, rtol=1e-5)


def test_shorter_input_uses_the_first_columns() -> None:
    attn = _linformer(proj_len=3, per_head=False, max_len=10)
    x = torch.randn(3, LEN, DIM)
    y, _ = attn(x, lengths_to_mask(LENGTHS, LEN))
    torch.testing.assert_close(y, _reference(attn, x, LENGTHS), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="max_len"):
        attn(torch.randn(1, 11, DIM), torch.ones(1, 11, dtype=torch.bool))


def test_padding_content_does_not_change_real_positions() -> None:
    attn = _linformer(proj_len=3, per_head=True)
    x = torch.randn(3, LEN, DIM)
    mask = lengths_to_mask(LENGTHS, LEN)
    y, _ = attn(x, mask)
    changed = torch.where(mask[..., None], x, 100 * torch.randn_like(x))
    y2, _ = attn(changed, mask)
    torch.testing.assert_close(y[mask], y2[mask])
    changed[1, 0] += 1.0  # a real token does change the outputs (the check above can fail)
    assert not torch.allclose(attn(changed, mask)[0][1, 0], y[1, 0])


def test_gradients_reach_every_parameter() -> None:
    attn = _linformer(proj_len=3, per_head=False).train()
    x = torch.randn(3, LEN, DIM, requires_grad=True)
    y, _ = attn(x, lengths_to_mask(LENGTHS, LEN))
    y.square().sum().backward()
    for name, p in [*attn.named_parameters(), ("x", x)]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # Columns of E beyond the real tokens of every example get no gradient: padding is masked.
    assert attn.key_proj.grad[:, 4:].abs().sum() > 0  # example 0 has 6 real tokens
    assert torch.all(attn.key_proj.grad[:, 6:] == 0)


@pytest.mark.parametrize("per_head", [False, True])
def test_analytic_flops_equal_the_counted_flops(per_head: bool) -> None:
    attn = _linformer(proj_len=4, per_head=per_head)
    x = torch.randn(3, LEN, DIM)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, aux = attn(x, lengths_to_mask(LENGTHS, LEN))
    analytic = attn.analytic_flops(x.shape, aux)
    assert sum(analytic.values()) == counter.get_total_flops()
    b, n, d, k = 3, LEN, DIM, 4
    assert analytic["seq_proj"] == 2 * 2 * b * k * n * d  # independent of the head split
    assert analytic["attn_scores"] == 2 * b * n * k * d


def test_sdpa_reference_for_k_smaller_than_l() -> None:
    """The slot attention equals F.scaled_dot_product_attention on hand-projected slots."""
    attn = _linformer(proj_len=2, per_head=False)
    x = torch.randn(1, LEN, DIM)  # no padding
    qkv = attn.qkv(x).view(1, LEN, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    q, k, v = qkv
    slots_k = torch.einsum("kl,bhld->bhkd", attn.key_proj, k)
    slots_v = torch.einsum("kl,bhld->bhkd", attn.value_proj, v)
    y = F.scaled_dot_product_attention(q, slots_k, slots_v).transpose(1, 2).reshape(1, LEN, DIM)
    expected = attn.out(y)
    got, _ = attn(x, torch.ones(1, LEN, dtype=torch.bool))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    attn = _linformer(proj_len=3, per_head=True)
    x, mask = torch.randn(3, LEN, DIM), lengths_to_mask(LENGTHS, LEN)
    expected, _ = attn(x, mask)
    got, _ = attn.cuda()(x.cuda(), mask.cuda())
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)
