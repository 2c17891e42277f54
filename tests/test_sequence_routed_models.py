"""The two per-sequence-capacity MoE models (`skywork_moe`, `xmoe`) as whole models: counted
FLOPs against fvcore on every CPU kernel path and the kernel each routed part reports; a sequence's
logits alone and inside a batch; Skywork's coefficient adapting per layer in training; the
routing statistics reaching the training loop's JSON-ready lists."""

from __future__ import annotations

import json

import pytest
import torch

from bench.measure.flops.analytic import analytic_flops
from bench.measure.flops.counted import count_flops
from bench.measure.flops.fvcore_check import fvcore_flops
from bench.train import _routing_lists
from models.config import ModelConfig, ModelTask
from models.moe import experts
from models.registry import build_model

MODELS = ["skywork_moe", "xmoe"]
CFG = ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64, experts=4, top_k=2)
TASK = ModelTask(num_classes=3, vocab_size=20, num_inputs=1, max_len=48)
LENGTHS = torch.tensor([48, 40, 17, 31])


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, CFG, TASK).eval()


def _batch(seed: int = 0) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, TASK.vocab_size, (len(LENGTHS), TASK.max_len), generator=g)
    tokens = tokens.masked_fill(torch.arange(TASK.max_len)[None] >= LENGTHS[:, None], 0)
    return (tokens,), (LENGTHS.clone(),)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("impl", ["mm", "torch", "bmm"])
def test_fvcore_counted_and_analytic_flops_agree_on_every_kernel(
    name: str, impl: str, monkeypatch
) -> None:
    monkeypatch.setattr(experts, "choose", lambda weight, rows=None: impl)
    model = _build(name)
    tokens, lengths = _batch()
    analytic = []
    with torch.no_grad():
        counted = count_flops(
            lambda: analytic.append(analytic_flops(model, lambda: model(tokens, lengths)))
        )
    assert sum(analytic[0].components.values()) == counted.total
    assert set(analytic[0].kernels.values()) == {impl}
    routed = [n for n, m in model.named_modules() if hasattr(m, "gemm_kernel")]
    assert sorted(analytic[0].kernels) == sorted(routed) and len(routed) == CFG.depth
    theirs = fvcore_flops(model, tokens, lengths)
    assert not any("GroupedMm" in op for op in theirs.unsupported)
    assert theirs.flops == counted.total


@pytest.mark.parametrize("name", MODELS)
def test_a_sequence_gets_the_same_logits_alone_and_in_a_batch(name: str) -> None:
    model = _build(name)
    tokens, lengths = _batch(1)
    with torch.no_grad():
        together = model(tokens, lengths).logits
        for b, n in enumerate(lengths[0].tolist()):
            alone = model((tokens[0][b : b + 1, :n],), (lengths[0][b : b + 1],)).logits
            torch.testing.assert_close(alone[0], together[b], rtol=1e-5, atol=1e-6)


def test_skywork_coefficients_adapt_per_layer_and_reach_the_records() -> None:
    """One training forward moves each layer's alpha by its own drop rate; evaluation does
    not; the statistics (with the alpha each call used) are JSON-ready for a record."""
    model = _build("skywork_moe").train()
    tokens, lengths = _batch(2)
    out = model(tokens, lengths)
    ffns = [block.ffn for block in model.encoder.blocks]
    for ffn, stats in zip(ffns, out.layer_stats, strict=True):
        used = stats["ffn"]["aux_coefficient"].item()
        dropped = stats["ffn"]["dropped_fraction"].item()
        beta, xi = ffn.skywork.aux_smoothing, ffn.skywork.aux_sensitivity
        assert used == pytest.approx(CFG.balance_loss_weight)
        assert ffn.aux_coefficient.item() == pytest.approx(
            beta * used + (1 - beta) * xi * dropped, rel=1e-6
        )
    assert len({f.aux_coefficient.item() for f in ffns}) == CFG.depth  # each its own rate
    lists = json.loads(json.dumps(_routing_lists(out.layer_stats)))
    assert set(lists[0]["ffn"]) >= {"aux_coefficient", "dropped_fraction", "tokens_per_expert"}
    after = [f.aux_coefficient.item() for f in ffns]
    model.eval()
    with torch.no_grad():
        model(tokens, lengths)
    assert [f.aux_coefficient.item() for f in ffns] == after


def test_xmoe_records_experts_per_token() -> None:
    model = _build("xmoe")
    tokens, lengths = _batch(3)
    with torch.no_grad():
        stats = model(tokens, lengths).layer_stats[0]["ffn"]
    wanted_mean, wanted_max = (
        stats[k].item() for k in ("experts_per_token_mean", "experts_per_token_max")
    )
    kept = stats["kept_experts_per_token_mean"].item()
    assert 1 <= wanted_mean <= wanted_max <= CFG.experts * 4
    assert kept == pytest.approx(stats["tokens_per_expert"].sum().item() / int(LENGTHS.sum()))
    assert kept <= wanted_mean
