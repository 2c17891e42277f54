"""Switch: capacity dropping, gate scaling, balance and z losses against hand-computed values,
padding never routed, statistics, parameter counts and FLOPs against independent counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from baselines.switch import SwitchFields, switch_ffn_config
from models.config import ModelConfig, ModelTask
from models.errors import InputError
from models.layers.classifier import parameter_counts
from models.moe.experts import MoEConfig, MoEFFN
from models.moe.routing import balance_loss, capacity, switch_top1, z_loss
from models.registry import MODELS

# Token t's top-1 expert: 0 0 0 1 1 0 2 3 -> expert 0 has 4 tokens, capacity 2 keeps tokens 0, 1.
CHOICE = [0, 0, 0, 1, 1, 0, 2, 3]


def hand_probs() -> torch.Tensor:
    """(8, 4) rows with 0.7 on the chosen expert and 0.1 elsewhere."""
    probs = torch.full((8, 4), 0.1)
    probs[torch.arange(8), torch.tensor(CHOICE)] = 0.7
    return probs


def test_capacity_formula() -> None:
    assert capacity(8, 4, 1.0) == 2
    assert capacity(10, 4, 1.25) == math.ceil(3.125)
    with pytest.raises(ValueError, match="capacity_factor"):
        capacity(8, 4, 0.0)


def test_drops_exactly_the_tokens_over_capacity() -> None:
    routing = switch_top1(hand_probs().log(), expert_capacity=2)
    assert routing.chosen[:, 0].tolist() == CHOICE
    assert routing.expert[:, 0].tolist() == [0, 0, -1, 1, 1, -1, 2, 3]  # 3rd and 4th of expert 0
    torch.testing.assert_close(
        routing.gate[:, 0], torch.tensor([0.7, 0.7, 0, 0.7, 0.7, 0, 0.7, 0.7])
    )


def test_balance_and_z_loss_equal_the_formula() -> None:
    probs = hand_probs()
    shift = torch.arange(8.0)[:, None] / 4  # logsumexp of log(p) + c is c (rows of p sum to 1)
    logits = probs.log() + shift
    routing = switch_top1(logits, expert_capacity=2)
    f = torch.tensor([4, 2, 1, 1]) / 8  # counted before dropping
    p_mean = torch.tensor([(4 * 0.7 + 4 * 0.1), (2 * 0.7 + 6 * 0.1), 1.4, 1.4]) / 8
    want = 4 * float((f * p_mean).sum())  # 4 * (0.5*0.4 + 0.25*0.25 + 2 * 0.125*0.175)
    assert want == pytest.approx(1.225)
    assert balance_loss(logits, routing.chosen).item() == pytest.approx(want, rel=1e-6)
    assert z_loss(logits).item() == pytest.approx(sum((t / 4) ** 2 for t in range(8)) / 8, rel=1e-5)
    uniform = torch.zeros(8, 4)  # uniform probabilities, balanced argmax -> loss 1
    assert balance_loss(uniform, torch.arange(8)[:, None] % 4).item() == pytest.approx(1.0)


def expert_reference(ffn: MoEFFN, token: torch.Tensor, expert: int) -> torch.Tensor:
    """One dense GELU FFN, written directly with the expert's weights."""
    hidden = F.gelu(token @ ffn.w_up[expert] + ffn.b_up[expert])
    return hidden @ ffn.w_down[expert] + ffn.b_down[expert]


@pytest.mark.parametrize("group", ["sequence", "batch"])
@pytest.mark.parametrize("impl", ["loop", "mm", "bmm", None])
def test_ffn_output_is_gate_times_expert_or_zero(impl: str | None, group: str) -> None:
    """A loop over the real tokens in batch-row then position order: each expert keeps the
    first `capacity` tokens of its queue, the queue and capacity restarting at each sequence
    (ceil(1.0 * its real tokens / 4)) for "sequence", one queue and ceil(1.0 * 13 / 4) = 4 for
    "batch". Padded rows included; rows 0 and 2 are long enough to drop tokens."""
    torch.manual_seed(0)
    cfg = MoEConfig(16, 32, 4, 1, "switch", "gelu", 1.0, capacity_group=group, impl=impl)
    ffn = MoEFFN(cfg)
    with torch.no_grad():
        ffn.b_up.normal_()
        ffn.b_down.normal_()
    x = torch.randn(3, 6, 16)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 3:] = False  # 6 + 3 + 4 = 13 real tokens
    mask[2, 4:] = False
    y, aux = ffn(x, mask)
    probs = torch.softmax(ffn.router(x), -1)  # (B, L, E)
    gate, choice = probs.max(-1)  # (B, L) each
    kept = [0] * 4
    dropped = 0
    seen = [0] * 4
    for b in range(3):
        real = int(mask[b].sum())
        if group == "sequence":
            seen, cap = [0] * 4, math.ceil(real / 4)
        else:
            cap = math.ceil(13 / 4)
        for t in range(6):
            if not mask[b, t]:
                torch.testing.assert_close(y[b, t], torch.zeros(16))
                continue
            e = int(choice[b, t])
            seen[e] += 1
            if seen[e] <= cap:
                want = gate[b, t] * expert_reference(ffn, x[b, t], e)
                kept[e] += 1
            else:
                want = torch.zeros(16)
                dropped += 1
            torch.testing.assert_close(y[b, t], want, rtol=1e-5, atol=1e-5)
    assert dropped > 0
    assert aux.stats["dropped_fraction"].item() == pytest.approx(dropped / 13)
    assert aux.stats["tokens_per_expert"].tolist() == [float(k) for k in kept]
    counts = torch.tensor([float(k) for k in kept])
    assert aux.stats["load_cv"].item() == pytest.approx(
        (counts.std(correction=0) / counts.mean()).item()
    )
    assert aux.stats["load_max_over_mean"].item() == pytest.approx(
        (counts.max() / counts.mean()).item()
    )


def test_sequence_capacity_does_not_see_the_batch_mates() -> None:
    """A sequence's output alone equals its output beside others (capacity_group="sequence");
    with "batch" a batch-mate that takes an expert's places first drops the sequence's tokens."""
    torch.manual_seed(4)
    outputs = {}
    for group in ("sequence", "batch"):
        torch.manual_seed(4)
        ffn = MoEFFN(MoEConfig(8, 16, 2, 1, "switch", "gelu", 1.0, capacity_group=group))
        x = torch.randn(2, 8, 8)
        mask = torch.ones(2, 8, dtype=torch.bool)
        with torch.no_grad():
            together, _ = ffn(x, mask)
            alone, _ = ffn(x[1:], mask[1:])
        outputs[group] = (together[1] - alone[0]).abs().max().item()
    assert outputs["sequence"] < 1e-6
    assert outputs["batch"] > 1e-3


def test_switch_capacity_group_is_checked() -> None:
    with pytest.raises(InputError, match="capacity_group"):
        SwitchFields(capacity_group="row")
    with pytest.raises(ValueError, match="capacity_group"):
        MoEConfig(8, 16, 2, 1, "switch", "gelu", capacity_group="row")


def test_padding_is_never_routed_and_gets_zero() -> None:
    torch.manual_seed(1)
    ffn = MoEFFN(MoEConfig(8, 16, 3, 1, "switch", "gelu", capacity_factor=10.0))
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    y, aux = ffn(x, mask)
    assert aux.stats["tokens_per_expert"].sum().item() == 7.0
    assert torch.equal(y[~mask], torch.zeros(3, 8))
    x2 = x.clone()
    x2[~mask] = 100.0  # padding content must not change any real token's output
    y2, _ = ffn(x2, mask)
    torch.testing.assert_close(y2[mask], y[mask])


def test_aux_loss_weights_and_router_gradient() -> None:
    """aux.loss = 0.5 * balance + 0.25 * z, both written out here from the router logits of the
    real tokens only: balance = E * sum_e f_e P_e with f_e the share of top-1 choices made
    BEFORE capacity dropping (some are dropped here), z = mean over tokens of logsumexp^2."""
    torch.manual_seed(2)
    cfg = MoEConfig(8, 16, 4, 1, "switch", "gelu", 0.5, balance_loss_weight=0.5, z_loss_weight=0.25)
    ffn = MoEFFN(cfg)
    x = 3 * torch.randn(3, 4, 8)  # (B, L, D); larger logits keep z well away from 0
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    y, aux = ffn(x, mask)  # T = 9 real tokens, capacity ceil(0.5 * 9 / 4) = 2: 4 * 2 < 9
    assert aux.stats["dropped_fraction"].item() > 0

    logits = ffn.router(x[mask]).detach().tolist()  # (T, E), real tokens in position order
    top1 = [row.index(max(row)) for row in logits]
    f = [top1.count(e) / 9 for e in range(4)]
    probs = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits]
    p = [sum(row[e] for row in probs) / 9 for e in range(4)]
    balance = 4 * sum(fe * pe for fe, pe in zip(f, p, strict=True))
    z = sum(math.log(sum(math.exp(v) for v in row)) ** 2 for row in logits) / 9
    assert aux.stats["aux_loss"].item() == pytest.approx(balance, rel=1e-5)
    assert aux.loss.item() == pytest.approx(0.5 * balance + 0.25 * z, rel=1e-5)
    y.square().sum().backward()  # the task loss alone reaches the router through the gate
    assert ffn.router.weight.grad.abs().sum() > 0


def toy_task() -> ModelTask:
    return ModelTask(num_classes=3, vocab_size=20, num_inputs=1, max_len=12)


def test_registered_model_active_parameters_match_dense() -> None:
    cfg = ModelConfig(dim=16, depth=2, heads=2, ffn_dim=32, experts=4)
    task = toy_task()
    switch = MODELS.get("switch")(cfg, task)
    dense = MODELS.get("full_attention")(cfg, task)
    total, active = parameter_counts(switch)
    dense_total, _ = parameter_counts(dense)
    router = cfg.dim * cfg.experts
    assert active == dense_total + cfg.depth * router
    expert = 16 * 32 + 32 + 32 * 16 + 16
    assert total == dense_total + cfg.depth * (router + 3 * expert)
    assert switch_ffn_config(cfg).top_k == 1


@pytest.mark.parametrize("impl", ["mm", "bmm"])
def test_analytic_flops_equal_counted(impl: str) -> None:
    torch.manual_seed(3)
    ffn = MoEFFN(MoEConfig(16, 32, 4, 1, "switch", "gelu", capacity_factor=1.0, impl=impl))
    x = torch.randn(2, 10, 16)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 7:] = False
    with FlopCounterMode(display=False) as counter:
        _, aux = ffn(x, mask)
    flops = ffn.analytic_flops(x.shape, aux)
    assert sum(flops.values()) == counter.get_total_flops()
    assert flops["router"] == 2 * 17 * 16 * 4
