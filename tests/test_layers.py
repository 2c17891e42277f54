from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench import registries
from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.block import Block
from models.layers.classifier import parameter_counts
from models.layers.ffn import DenseFFN
from models.layers.heads import masked_mean_pool
from models.layers.parts import NO_AUX, lengths_to_mask


def _task(num_inputs: int = 1, max_len: int = 12) -> ModelTask:
    return ModelTask(num_classes=3, vocab_size=11, num_inputs=num_inputs, max_len=max_len)


def _model(num_inputs: int = 1, max_len: int = 12):
    torch.manual_seed(0)
    cfg = ModelConfig(dim=16, depth=2, heads=2, ffn_dim=32)
    return registries.MODELS.get("full_attention")(cfg, _task(num_inputs, max_len)).eval()


def test_lengths_to_mask() -> None:
    mask = lengths_to_mask(torch.tensor([1, 3]), 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, True, False]]


def test_masked_mean_pool_matches_a_loop() -> None:
    hidden = torch.randn(3, 5, 4)
    lengths = torch.tensor([5, 2, 1])
    pooled = masked_mean_pool(hidden, lengths_to_mask(lengths, 5))
    expected = torch.stack([hidden[i, : int(n)].mean(0) for i, n in enumerate(lengths)])
    torch.testing.assert_close(pooled, expected)


def test_attention_matches_an_explicit_masked_softmax() -> None:
    torch.manual_seed(1)
    attn = MultiHeadAttention(dim=8, heads=2, attn_dropout=0.0).eval()
    x = torch.randn(2, 6, 8)
    lengths = torch.tensor([6, 4])
    y, aux = attn(x, lengths_to_mask(lengths, 6))
    assert aux.loss is None and not aux.stats

    wq, wk, wv = attn.qkv.weight.chunk(3)  # each (D, D): rows are output features
    bq, bk, bv = attn.qkv.bias.chunk(3)
    for b, n in enumerate(lengths.tolist()):
        heads = []
        for h in range(2):
            rows = slice(4 * h, 4 * h + 4)
            q = x[b] @ wq[rows].T + bq[rows]  # (L, Dh)
            k = x[b, :n] @ wk[rows].T + bk[rows]  # (n, Dh): real keys only
            v = x[b, :n] @ wv[rows].T + bv[rows]
            weights = torch.softmax(q @ k.T / math.sqrt(4), dim=-1)  # (L, n)
            heads.append(weights @ v)
        expected = attn.out(torch.cat(heads, dim=-1))  # (L, D)
        torch.testing.assert_close(y[b], expected, atol=1e-5, rtol=1e-5)


def test_padding_content_does_not_change_the_output() -> None:
    model = _model()
    tokens = torch.randint(1, 11, (3, 12))
    lengths = torch.tensor([12, 7, 3])
    before = model((tokens,), (lengths,)).logits
    changed = tokens.clone()
    for b, n in enumerate(lengths.tolist()):
        changed[b, n:] = torch.randint(1, 11, (12 - n,))
    after = model((changed,), (lengths,)).logits
    torch.testing.assert_close(before, after)
    # ...while a real token does change it (so the check above can fail).
    changed[2, 0] = (tokens[2, 0] % 10) + 1
    assert not torch.allclose(model((changed,), (lengths,)).logits[2], before[2])


def test_dual_encoder_head_reads_both_inputs() -> None:
    model = _model(num_inputs=2)
    a, b = torch.randint(1, 11, (2, 4, 12))
    lengths = torch.full((4,), 12)
    out = model((a, b), (lengths, lengths))
    assert out.logits.shape == (4, 3)
    swapped = model((b, a), (lengths, lengths)).logits
    assert not torch.allclose(out.logits, swapped), "u - v makes the head order-sensitive"
    with pytest.raises(ValueError, match="expected 2 inputs"):
        model((a,), (lengths,))


def test_dense_model_has_no_aux_and_all_parameters_active() -> None:
    """No aux loss, no routing statistics; every parameter active, and the count equals one
    written out from the config (D 16, 2 blocks, FFN 32, vocab 11, max_len 12, 3 classes)."""
    model = _model()
    out = model((torch.randint(1, 11, (2, 12)),), (torch.tensor([12, 5]),))
    assert float(out.aux_loss) == 0.0
    assert all(not layer for layer in out.layer_stats)
    d, ffn = 16, 32
    embeddings = 11 * d + 12 * d  # token + position
    block = (
        2 * (d + d)  # two LayerNorms, weight and bias
        + (d * 3 * d + 3 * d)  # qkv Linear(D, 3D)
        + (d * d + d)  # out Linear(D, D)
        + (d * ffn + ffn)  # FFN Linear(D, H)
        + (ffn * d + d)  # FFN Linear(H, D)
    )
    assert block == 2224
    for num_inputs, head_in, want in ((1, d, 5491), (2, 4 * d, 7027)):  # dual: [u, v, uv, u-v]
        head = (head_in * ffn + ffn) + (ffn * 3 + 3)  # Linear(in, ffn_dim), ReLU, Linear(ffn, 3)
        assert embeddings + 2 * block + 2 * d + head == want  # 2 d: the final LayerNorm
        total, active = parameter_counts(_model(num_inputs))
        assert total == active == want


def test_a_block_refuses_a_part_without_the_contract() -> None:
    with pytest.raises(TypeError, match=r"mixer part Linear lacks phases, analytic_flops"):
        Block(8, nn.Linear(8, 8), DenseFFN(8, 16, 0.0), 0.0)


def test_part_flops_come_from_the_call_given_not_the_last_one() -> None:
    """analytic_flops reads only its arguments: a count asked for before any forward, or after a
    forward on another shape, answers for the shape given (hand count: QKV, scores, values, out)."""
    attn = MultiHeadAttention(dim=8, heads=2, attn_dropout=0.0)
    shape = torch.Size((3, 5, 8))
    want = 2 * 15 * 8 * 24 + 2 * 2 * 3 * 5 * 5 * 8 + 2 * 15 * 8 * 8
    assert sum(attn.analytic_flops(shape, NO_AUX).values()) == want
    attn(torch.randn(2, 7, 8), torch.ones(2, 7, dtype=torch.bool))
    assert sum(attn.analytic_flops(shape, NO_AUX).values()) == want
