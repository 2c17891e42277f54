"""The trimmed MoE glue against the glue it replaced, bit for bit.

`MoEFFN.forward` no longer picks the real tokens out of an unpadded batch, sums expert rows by
gathers instead of `index_add`, and computes the router losses only when they are weighted and
the statistics only when read. The old forward is written out here (real-token round trip,
`index_add` combine and permute backward, both losses and the statistics always computed) and
must give the same outputs, losses, statistics and gradients, exactly.
"""

from __future__ import annotations

import pytest
import torch

from models.kernels import Dispatch, grouped_mm
from models.moe.experts import MoEConfig, MoEFFN
from models.moe.routing import balance_loss, load_stats, z_loss


def _old_forward(ffn: MoEFFN, x: torch.Tensor, mask: torch.Tensor, impl: str):
    """The forward as it was (expert biases by index_select, which repeats; see permute.py)."""
    batch, length, dim = x.shape
    real = mask.reshape(-1).nonzero().squeeze(1)  # (T,)
    tokens = x.reshape(-1, dim).index_select(0, real)  # (T, D)
    logits = ffn.router(tokens).float()
    routing = ffn.route(logits, real, batch, length)
    d = Dispatch.top_k(routing.expert, ffn.cfg.experts)
    rows = tokens.index_select(0, d.token_index)  # (A, D)
    hidden = grouped_mm(rows, ffn.w_up, d.offsets, impl=impl)
    if ffn.b_up is not None:
        hidden = hidden + ffn.b_up.index_select(0, d.expert_index)
    if ffn.cfg.activation == "swiglu":
        gate, up = hidden.chunk(2, dim=-1)
        hidden = torch.nn.functional.silu(gate) * up
    else:
        hidden = torch.nn.functional.gelu(hidden)
    out = grouped_mm(ffn.dropout(hidden), ffn.w_down, d.offsets, impl=impl)
    if ffn.b_down is not None:
        out = out + ffn.b_down.index_select(0, d.expert_index)
    weighted = out * routing.gate.reshape(-1)[d.order].to(out.dtype)[:, None]
    combined = out.new_zeros(d.num_tokens, dim).index_add(0, d.token_index, weighted)
    y = x.new_zeros(batch * length, dim).index_copy(0, real, combined.to(x.dtype))
    balance = balance_loss(logits, routing.chosen)
    loss = ffn.cfg.balance_loss_weight * balance
    if ffn.cfg.router == "switch":
        loss = loss + ffn.cfg.z_loss_weight * z_loss(logits)
    return y.view(batch, length, dim), loss, load_stats(routing, ffn.cfg.experts, balance)


CONFIGS = {
    "switch_weighted": MoEConfig(16, 32, 4, 1, "switch", "gelu", 1.0, 0.01, 0.001),
    "switch_unweighted": MoEConfig(16, 32, 4, 1, "switch", "gelu", 1.0, 0.0, 0.0),
    "mixtral_k2": MoEConfig(16, 24, 4, 2, "top_k", "swiglu"),
    "mixtral_k3_weighted": MoEConfig(16, 24, 5, 3, "top_k", "swiglu", balance_loss_weight=0.1),
}


@pytest.mark.parametrize("impl", ["mm", "mm_concurrent"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trimmed_forward_equals_the_old_glue_bit_for_bit(name: str, padded: bool, impl: str):
    cfg = CONFIGS[name]
    torch.manual_seed(0)
    ffn = MoEFFN(MoEConfig(**{**cfg.__dict__, "impl": impl}))
    if ffn.b_up is not None:  # nonzero biases, so their gradients are exercised
        torch.nn.init.normal_(ffn.b_up)
        torch.nn.init.normal_(ffn.b_down)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 20, 16, generator=gen)  # (B, L, D)
    mask = torch.ones(3, 20, dtype=torch.bool)
    if padded:
        mask[1, 13:] = False
        mask[2, 4:] = False
    grad_y = torch.randn(3, 20, 16, generator=gen)
    leaves = [x, *ffn.parameters()]

    def grads(y: torch.Tensor, loss: torch.Tensor | None) -> list[torch.Tensor]:
        total = (y * grad_y).sum() + (loss if loss is not None else 0.0)
        return list(torch.autograd.grad(total, leaves, allow_unused=True))

    x.requires_grad_(True)
    y_old, loss_old, stats_old = _old_forward(ffn, x, mask, impl)
    grads_old = grads(y_old, loss_old)
    y_new, aux = ffn(x, mask)
    grads_new = grads(y_new, aux.loss)

    assert torch.equal(y_new, y_old)
    weighted = cfg.balance_loss_weight or (cfg.router == "switch" and cfg.z_loss_weight)
    if weighted:
        assert torch.equal(aux.loss, loss_old)
    else:  # weight 0: nothing enters the loss (the old code added an exact 0)
        assert aux.loss is None and loss_old.item() == 0.0
    assert list(aux.stats) == list(stats_old)
    for key, value in stats_old.items():
        assert torch.equal(aux.stats[key], value), key
    for i, (new, old) in enumerate(zip(grads_new, grads_old, strict=True)):
        assert (new is None) == (old is None) or torch.equal(new, torch.zeros_like(new)), i
        if new is not None and old is not None:
            assert torch.equal(new, old), f"gradient {i} differs"


def test_unread_statistics_are_not_computed() -> None:
    ffn = MoEFFN(MoEConfig(8, 12, 4, 2, "top_k", "swiglu"))
    _, aux = ffn(torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
    assert aux.stats._values is None and len(aux.stats) == 5  # keys known, nothing computed
    assert aux.stats["tokens_per_expert"].sum().item() == 20  # 10 tokens x top-2, on reading
    with pytest.raises(KeyError, match="no routing statistic 'load'"):
        aux.stats["load"]
