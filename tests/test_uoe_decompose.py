"""UoE equivalent decomposition: experts are exact slices of the dense weights, and with every
expert taking every token, SMHA / UoME / the whole model equal the dense ones (outputs and
gradients, with padding masks)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench import registries
from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.ffn import DenseFFN
from models.layers.parts import lengths_to_mask
from models.uoe.decompose import merge_attention, merge_mlp, split_attention, split_mlp
from models.uoe.model import from_dense
from models.uoe.routing import Capacity, RoutingConfig
from models.uoe.smha import SelectiveAttention
from models.uoe.uome import UnionMLP

# Every expert takes every token: top_k = E and capacity = all real patches.
ALL = Capacity("factor", 1.0)


def _everyone(experts: int, behaviour: str) -> RoutingConfig:
    paper = behaviour == "paper"
    return RoutingConfig(
        experts, experts, ALL, mask_padding=not paper, weighted=not paper, balance_loss_weight=0.0
    )


def _uniform_gate(module: torch.nn.Module) -> None:
    """A zero gate gives softmax 1/E, so the corrected weight k * (1/E) / (k/E) is exactly 1."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "router" in name:
                p.zero_()


def test_split_mlp_is_column_then_row_slices() -> None:
    torch.manual_seed(0)
    up, down = torch.nn.Linear(6, 8), torch.nn.Linear(8, 6)
    parts = split_mlp(up.weight, up.bias, down.weight, down.bias, 4)
    for e in range(4):
        cols = slice(2 * e, 2 * e + 2)
        torch.testing.assert_close(parts.up_weight[e], up.weight[cols].T, rtol=0, atol=0)
        torch.testing.assert_close(parts.up_bias[e], up.bias[cols], rtol=0, atol=0)
        torch.testing.assert_close(parts.down_weight[e], down.weight[:, cols].T, rtol=0, atol=0)
    merged = merge_mlp(parts)
    for got, want in zip(merged, (up.weight, up.bias, down.weight, down.bias), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"model\.experts"):
        split_mlp(up.weight, up.bias, down.weight, down.bias, 3)


def test_split_attention_takes_each_heads_q_k_v_columns_and_out_rows() -> None:
    torch.manual_seed(0)
    qkv, out = torch.nn.Linear(8, 24), torch.nn.Linear(8, 8)
    parts = split_attention(qkv.weight, qkv.bias, out.weight, out.bias, 2)
    wq, wk, wv = qkv.weight.chunk(3)  # each (D, D), rows = output features
    for h in range(2):
        rows = slice(4 * h, 4 * h + 4)
        want = torch.cat([wq[rows], wk[rows], wv[rows]]).T  # (D, 3 Dh)
        torch.testing.assert_close(parts.qkv_weight[h], want, rtol=0, atol=0)
        torch.testing.assert_close(parts.out_weight[h], out.weight[:, rows].T, rtol=0, atol=0)
    merged = merge_attention(parts)
    for got, want in zip(merged, (qkv.weight, qkv.bias, out.weight, out.bias), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("behaviour", ["paper", "corrected"])
def test_uome_with_all_experts_equals_the_explicit_expert_sum_and_dense(behaviour: str) -> None:
    torch.manual_seed(1)
    dense = DenseFFN(8, 16, 0.0)
    uome = UnionMLP(8, 16, _everyone(4, behaviour), 0.0)
    w1, b1, w2, b2 = dense.up.weight, dense.up.bias, dense.down.weight, dense.down.bias
    uome.load_experts(split_mlp(w1, b1, w2, b2, 4))
    _uniform_gate(uome)
    x = torch.randn(3, 5, 8, requires_grad=True)
    mask = lengths_to_mask(torch.tensor([5, 3, 1]), 5)
    y, aux = uome(x, mask)
    # Independent reference: the sum over hand-sliced experts, bias b2 once.
    expected = b2 + sum(
        F.linear(
            F.gelu(F.linear(x, w1[4 * e : 4 * e + 4], b1[4 * e : 4 * e + 4])),
            w2[:, 4 * e : 4 * e + 4],
        )
        for e in range(4)
    )
    real = mask[..., None]
    torch.testing.assert_close(y * real, expected * real, rtol=1e-5, atol=1e-6)
    dense_y, _ = dense(x, mask)
    torch.testing.assert_close(y * real, dense_y * real, rtol=1e-5, atol=1e-6)
    assert aux.stats["dropped_fraction"] == 0

    grad_out = torch.randn_like(y) * real
    g_uoe = torch.autograd.grad(y, [x, uome.up_weight, uome.down_weight], grad_out)
    g_dense = torch.autograd.grad(dense_y, [x, dense.up.weight, dense.down.weight], grad_out)
    torch.testing.assert_close(g_uoe[0], g_dense[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_uoe[1], g_dense[1].view(4, 4, 8).transpose(1, 2))
    torch.testing.assert_close(g_uoe[2], g_dense[2].view(8, 4, 4).permute(1, 2, 0))


@pytest.mark.parametrize("behaviour", ["paper", "corrected"])
def test_smha_with_all_heads_equals_dense_attention(behaviour: str) -> None:
    torch.manual_seed(2)
    dense = MultiHeadAttention(8, 2, 0.0)
    smha = SelectiveAttention(8, 2, _everyone(2, behaviour), 0.0)
    q, o = dense.qkv, dense.out
    smha.load_experts(split_attention(q.weight, q.bias, o.weight, o.bias, 2))
    _uniform_gate(smha)
    x = torch.randn(3, 6, 8, requires_grad=True)
    mask = lengths_to_mask(torch.tensor([6, 4, 2]), 6)
    y, _ = smha(x, mask)
    dense_y, _ = dense(x, mask)
    real = mask[..., None]
    torch.testing.assert_close(y * real, dense_y * real, rtol=1e-5, atol=1e-6)

    grad_out = torch.randn_like(y) * real
    g_uoe = torch.autograd.grad(y, [x, smha.qkv_weight, smha.out_weight], grad_out)
    g_dense = torch.autograd.grad(dense_y, [x, q.weight, o.weight], grad_out)
    torch.testing.assert_close(g_uoe[0], g_dense[0], rtol=1e-5, atol=1e-6)
    q_grad = g_dense[1].view(3, 2, 4, 8).permute(1, 3, 0, 2).reshape(2, 8, 12)
    torch.testing.assert_close(g_uoe[1], q_grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_uoe[2], g_dense[2].view(8, 2, 4).permute(1, 2, 0))


def _task() -> ModelTask:
    return ModelTask(num_classes=3, vocab_size=11, num_inputs=1, max_len=12)


@pytest.mark.parametrize("behaviour", ["paper", "corrected"])
def test_from_dense_model_equals_dense_outputs_and_gradients(behaviour: str) -> None:
    torch.manual_seed(3)
    cfg = ModelConfig(dim=16, depth=2, heads=2, ffn_dim=32, experts=4)
    dense = registries.MODELS.get("full_attention")(cfg, _task())
    uoe = from_dense(
        dense, cfg, behaviour, routing=(_everyone(2, behaviour), _everyone(4, behaviour))
    )
    _uniform_gate(uoe)
    tokens = torch.randint(1, 11, (4, 12))
    lengths = torch.tensor([12, 7, 3, 10])
    want = dense((tokens,), (lengths,)).logits
    got = uoe((tokens,), (lengths,)).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)

    labels = torch.tensor([0, 1, 2, 1])
    F.cross_entropy(want, labels).backward()
    F.cross_entropy(got, labels).backward()
    dense_grads = dict(dense.named_parameters())
    for name, p in uoe.named_parameters():
        if name in dense_grads:  # embeddings, norms, head
            torch.testing.assert_close(p.grad, dense_grads[name].grad, rtol=1e-4, atol=1e-6)
    for d_block, u_block in zip(dense.encoder.blocks, uoe.encoder.blocks, strict=True):
        up_grad = u_block.ffn.up_weight.grad.transpose(1, 2).reshape(32, 16)  # (H, D)
        torch.testing.assert_close(up_grad, d_block.ffn.up.weight.grad, rtol=1e-4, atol=1e-6)
        qkv_grad = u_block.mixer.qkv_weight.grad.view(2, 16, 3, 8).permute(2, 0, 3, 1)
        torch.testing.assert_close(qkv_grad.reshape(48, 16), d_block.mixer.qkv.weight.grad)
