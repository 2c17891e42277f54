"""Mixtral-style top-k MoE: gates sum to one and equal softmax over the kept logits, the FFN
equals a per-token SwiGLU reference, parameter counts against a hand count of the built model,
FLOPs, the balance loss against one written out from the router logits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from baselines.mixtral import swiglu_hidden
from models.config import ModelConfig, ModelTask
from models.layers.classifier import parameter_counts
from models.moe.experts import MoEConfig, MoEFFN
from models.moe.routing import top_k_softmax
from models.registry import MODELS


def test_gates_sum_to_one_and_renormalise_the_full_softmax() -> None:
    torch.manual_seed(0)
    logits = torch.randn(20, 6)
    routing = top_k_softmax(logits, 2)
    torch.testing.assert_close(routing.gate.sum(-1), torch.ones(20))
    probs = torch.softmax(logits, -1)
    top = probs.topk(2).values
    torch.testing.assert_close(routing.gate, top / top.sum(-1, keepdim=True))
    assert (routing.expert >= 0).all()  # dropless
    with pytest.raises(ValueError, match="top_k=7"):
        top_k_softmax(logits, 7)


def test_hand_built_gates() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 3.0 + torch.log(torch.tensor(3.0)).item()]])
    routing = top_k_softmax(logits, 2)
    assert sorted(routing.expert[0].tolist()) == [1, 3]
    torch.testing.assert_close(routing.gate[0].sort().values, torch.tensor([0.25, 0.75]))


def swiglu_reference(ffn: MoEFFN, token: torch.Tensor, expert: int) -> torch.Tensor:
    h = ffn.cfg.hidden
    w1, w3 = ffn.w_up[expert][:, :h], ffn.w_up[expert][:, h:]
    return (F.silu(token @ w1) * (token @ w3)) @ ffn.w_down[expert]


@pytest.mark.parametrize(("experts", "k", "impl"), [(4, 2, "mm"), (4, 2, "bmm"), (3, 3, None)])
def test_ffn_equals_per_token_reference(experts: int, k: int, impl: str | None) -> None:
    torch.manual_seed(1)
    ffn = MoEFFN(MoEConfig(8, 12, experts, k, "top_k", "swiglu", impl=impl))
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    y, aux = ffn(x, mask)
    for b, t in mask.nonzero().tolist():
        token = x[b, t]
        logits = ffn.router(token)
        top, chosen = logits.topk(k)
        gates = torch.softmax(top, -1)
        want = sum(
            g * swiglu_reference(ffn, token, int(e)) for g, e in zip(gates, chosen, strict=True)
        )
        torch.testing.assert_close(y[b, t], want, rtol=1e-5, atol=1e-5)
    assert torch.equal(y[~mask], torch.zeros(3, 8))
    assert aux.stats["tokens_per_expert"].sum().item() == 7 * k
    assert aux.stats["dropped_fraction"].item() == 0.0


def test_parameter_counts_equal_a_hand_count() -> None:
    """Total and active parameters of the built model against a count written out from the
    architecture: per layer E SwiGLU experts of hidden h = round(2 * ffn_dim / (3 * top_k)),
    without biases; a token uses top_k of them, so E - top_k experts per layer are inactive."""
    assert swiglu_hidden(128, 2) == 43  # round(256 / 6 = 42.67); 3 * 43 * 2 = 258 ~ 2 * 128
    assert swiglu_hidden(96, 1) == 64  # exact: 3 * 64 = 2 * 96

    task = ModelTask(num_classes=3, vocab_size=20, num_inputs=1, max_len=12)
    cfg = ModelConfig(dim=16, depth=2, heads=2, ffn_dim=128, experts=4, top_k=2)
    total, active = parameter_counts(MODELS.get("mixtral")(cfg, task))
    d, h = 16, 43
    embeddings = 20 * d + 12 * d  # token (vocab 20) + position (max_len 12)
    norms = 2 * (d + d)  # the block's two LayerNorms, weight and bias
    attention = (d * 3 * d + 3 * d) + (d * d + d)  # qkv and out projections, with biases
    router = d * 4  # Linear(D, E), no bias
    expert = d * 2 * h + h * d  # [W1 | W3] (D, 2h) and W2 (h, D), no biases: 3 * 16 * 43
    head = (d * 128 + 128) + (128 * 3 + 3)  # Linear(D, ffn_dim), ReLU, Linear(ffn_dim, 3)
    per_layer = norms + attention + router + 4 * expert
    assert (expert, per_layer) == (2064, 9472)
    assert total == embeddings + 2 * per_layer + 2 * d + head == 22051  # 2 d: final LayerNorm
    assert active == total - 2 * (4 - 2) * expert == 13795  # 2 layers x 2 unused experts


def test_analytic_flops_equal_counted_and_balance_loss_optional() -> None:
    torch.manual_seed(2)
    ffn = MoEFFN(MoEConfig(8, 12, 4, 2, "top_k", "swiglu", impl="mm"))
    x = torch.randn(3, 6, 8)
    mask = torch.ones(3, 6, dtype=torch.bool)
    with FlopCounterMode(display=False) as counter:
        _, aux = ffn(x, mask)
    flops = ffn.analytic_flops(x.shape, aux)
    assert sum(flops.values()) == counter.get_total_flops()
    assert flops == {
        "router": 2 * 18 * 8 * 4,
        "ffn_up": 2 * 36 * 8 * 24,
        "ffn_down": 2 * 36 * 12 * 8,
    }
    # Balance loss written out from the router logits (models/moe/routing.py): E * sum_e f_e P_e,
    # f_e the share of the T * k = 36 top-2 assignments that go to e, P_e the mean probability.
    logits = ffn.router(x.reshape(18, 8)).detach()  # (T, E): every token is real
    chosen = logits.topk(2, dim=-1).indices.tolist()  # (T, 2)
    f = [sum(row.count(e) for row in chosen) / 36 for e in range(4)]
    p = torch.softmax(logits, dim=-1).mean(0).tolist()  # (E,)
    balance = 4 * sum(fe * pe for fe, pe in zip(f, p, strict=True))
    assert aux.loss is None  # weight 0: not computed into the loss, reported in the stats only
    assert aux.stats["aux_loss"].item() == pytest.approx(balance, rel=1e-5)
    weighted = MoEFFN(MoEConfig(8, 12, 4, 2, "top_k", "swiglu", balance_loss_weight=0.1))
    weighted.load_state_dict(ffn.state_dict())
    _, aux2 = weighted(x, mask)
    assert aux2.loss.item() == pytest.approx(0.1 * balance, rel=1e-5)


def test_an_expert_width_unaligned_for_torch_grouped_mm_runs() -> None:
    """ffn_dim 30, top-2: SwiGLU hidden 10, so the up weight (D, 20) suits torch._grouped_mm
    but the down weight (10, D) does not; both GEMMs take one path that multiplies both."""
    torch.manual_seed(0)
    model = MODELS.get("mixtral")(ModelConfig(dim=32, ffn_dim=30, top_k=2), ModelTask(3, 20, 1, 16))
    tokens = torch.randint(1, 20, (2, 16))
    out = model((tokens,), (torch.tensor([16, 9]),))
    assert torch.isfinite(out.logits).all()
    ffn = model.encoder.blocks[0].ffn
    assert ffn.w_down.shape[1] == 10 and ffn.gemm_kernel(rows=50) == "mm"
