"""The registered UoE models: router gradients (none for uoe_paper, some for uoe), batch
permutation, parameter counts, analytic FLOPs against FlopCounterMode and against the dense
figure, and every LRA scale preset."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench import registries
from bench.measure.flops.counted import FORMULAS
from models.config import ModelConfig, ModelTask
from models.layers.classifier import parameter_counts
from models.layers.parts import lengths_to_mask
from models.uoe.routing import Capacity, RoutingConfig
from models.uoe.smha import SelectiveAttention
from models.uoe.uome import UnionMLP
from suites.lra.scales import LRA_SCALES

LRA = ModelConfig(dim=64, depth=2, heads=2, ffn_dim=128, experts=4, top_k=2)  # attn_top_k 1


def _task(max_len: int, vocab: int = 20) -> ModelTask:
    return ModelTask(num_classes=3, vocab_size=vocab, num_inputs=1, max_len=max_len)


def _batch(batch: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 20, (batch, length), generator=g)
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=g)
    lengths[0] = length
    return tokens, lengths


def _build(name: str, cfg: ModelConfig = LRA, max_len: int = 64) -> torch.nn.Module:
    torch.manual_seed(0)
    return registries.MODELS.get(name)(cfg, _task(max_len))


def _router_grads(model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    return {n: p.grad for n, p in model.named_parameters() if ".router." in n}


def test_uoe_paper_routers_get_no_gradient_and_uoe_routers_do() -> None:
    """The released code's flaw: gates only choose indices, so nothing trains them."""
    tokens, lengths = _batch(4, 64)
    labels = torch.tensor([0, 1, 2, 0])
    for name in ("uoe_paper", "uoe"):
        model = _build(name)
        out = model((tokens,), (lengths,))
        (F.cross_entropy(out.logits, labels) + out.aux_loss).backward()
        grads = _router_grads(model)
        assert len(grads) == 8  # weight and bias of 2 parts x 2 layers
        if name == "uoe_paper":
            assert all(g is None for g in grads.values()), grads.keys()
            assert out.aux_loss.item() == 0.0
        else:
            assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
            assert out.aux_loss.item() > 0


def test_uoe_routers_learn_through_the_gate_weighting_alone() -> None:
    """Without the balance loss the gradient can only come from the gate-weighted outputs."""
    cfg = ModelConfig(**{**LRA.__dict__, "balance_loss_weight": 0.0})
    model = _build("uoe", cfg)
    tokens, lengths = _batch(4, 64)
    out = model((tokens,), (lengths,))
    assert out.aux_loss.item() == 0.0
    out.logits.sum().backward()
    assert all(g is not None and g.abs().sum() > 0 for g in _router_grads(model).values())


@pytest.mark.parametrize("name", ["uoe", "uoe_paper"])
def test_a_permutation_of_the_batch_permutes_the_outputs(name: str) -> None:
    model = _build(name).eval()
    tokens, lengths = _batch(6, 64, seed=1)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        logits = model((tokens,), (lengths,)).logits
        permuted = model((tokens[perm],), (lengths[perm],)).logits
    torch.testing.assert_close(permuted, logits[perm], rtol=1e-5, atol=1e-6)


def test_uoe_sequence_output_does_not_depend_on_the_rest_of_the_batch() -> None:
    model = _build("uoe").eval()
    tokens, lengths = _batch(5, 64, seed=2)
    with torch.no_grad():
        together = model((tokens,), (lengths,)).logits
        alone = model((tokens[2:3],), (lengths[2:3],)).logits
    torch.testing.assert_close(alone, together[2:3], rtol=1e-5, atol=1e-6)


def test_active_parameters_count_top_k_of_the_experts() -> None:
    total, active = parameter_counts(_build("uoe"))
    # Per layer: MLP experts 64x128 + 128 + 128x64 = 16512, top-2 of 4 -> 8256 inactive;
    # attention experts 64x192 + 192 + 64x64 = 16576, top-1 of 2 -> 8288 inactive.
    assert total - active == 2 * (8256 + 8288)
    dense_total, _ = parameter_counts(_build("full_attention"))
    assert total == dense_total + 2 * (64 * 2 + 2 + 64 * 4 + 4)  # plus the two routers


def test_analytic_flops_match_flop_counter_for_the_matmuls() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 16, 8)
    mask = lengths_to_mask(torch.tensor([16, 9, 4]), 16)
    uome = UnionMLP(8, 16, RoutingConfig(4, 2, Capacity("factor", 1.25)), 0.0)
    # FORMULAS adds what FlopCounterMode counts as zero (torch._grouped_mm, CPU attention).
    with FlopCounterMode(display=False, custom_mapping=FORMULAS) as counter:
        _, aux = uome(x, mask)
    assert counter.get_total_flops() == sum(uome.analytic_flops(x.shape, aux).values())

    smha = SelectiveAttention(8, 2, RoutingConfig(2, 1, Capacity("max_load")), 0.0)
    with FlopCounterMode(display=False, custom_mapping=FORMULAS) as counter:
        _, aux = smha(x, mask)
    counts = smha.analytic_flops(x.shape, aux)
    assert counter.get_total_flops() == sum(counts.values())
    slots = int(aux.sizes["slots"])
    assert counts["attn_scores"] == 2 * 2 * 3 * slots * slots * 4  # E x B x C x C x Dh

    # Stateless: another call in between does not change the count of the first one.
    smha(x[:1, :5], mask[:1, :5])
    assert smha.analytic_flops(x.shape, aux) == counts


def _part_calls(model: torch.nn.Module, tokens: torch.Tensor, lengths: torch.Tensor) -> list:
    """(layer, slot, part, x shape, aux) of every part call of one eval forward."""
    calls = []
    handles = [
        getattr(block, slot).register_forward_hook(
            lambda part, args, out, i=i, slot=slot: calls.append(
                (i, slot, part, args[0].shape, out[1])
            )
        )
        for i, block in enumerate(model.encoder.blocks)
        for slot in ("mixer", "ffn")
    ]
    try:
        with torch.no_grad():
            model.eval()((tokens,), (lengths,))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def test_uoe_paper_mlp_runs_at_half_the_dense_flops() -> None:
    batch, length = 4, 128
    tokens, lengths = _batch(batch, length, seed=3)
    # The dense MLP's two GEMMs over every token: 2 x (2 B L D H), by hand.
    dense_mlp = 2 * 2 * batch * length * LRA.dim * LRA.ffn_dim
    for name in ("uoe_paper", "uoe"):
        model = _build(name, max_len=length)
        calls = [c for c in _part_calls(model, tokens, lengths) if c[1] == "ffn"]
        assert len(calls) == LRA.depth
        for _, _, part, shape, aux in calls:
            flops = part.analytic_flops(shape, aux)
            ratio = (flops["ffn_up"] + flops["ffn_down"]) / dense_mlp
            if name == "uoe_paper":  # fixed L/2 per expert, fillers included: exactly 1/2
                assert ratio == pytest.approx(0.5, rel=1e-9)
            else:  # kept real assignments are at most k / E = 1/2 of the dense rows; the CPU
                # kernel multiplies exactly the kept rows (no padding)
                kept = aux.stats["tokens_per_expert"].sum().item()
                # Each kept row is multiplied by one H/E slice: kept x H/E of the dense B L x H.
                share = kept / (LRA.experts * batch * length)
                assert share <= 0.5
                assert ratio == pytest.approx(share, rel=1e-9)


def test_model_analytic_flops_match_flop_counter_part_by_part() -> None:
    """Whatever kernel the dispatcher picks, analytic = counted (with our FLOP formulas)."""
    tokens = torch.randint(1, 20, (4, 128))
    lengths = torch.tensor([128, 100, 60, 128])
    for name in ("uoe", "uoe_paper"):
        model = _build(name, max_len=128).eval()
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=FORMULAS) as counter:
            model((tokens,), (lengths,))
        counted = counter.get_flop_counts()
        for i, slot, part, shape, aux in _part_calls(model, tokens, lengths):
            analytic = sum(part.analytic_flops(shape, aux).values())
            assert (
                sum(counted[f"SequenceClassifier.encoder.blocks.{i}.{slot}"].values()) == analytic
            )


@pytest.mark.parametrize("scale", sorted(LRA_SCALES))
@pytest.mark.parametrize("name", ["uoe", "uoe_paper", "uoe_patch", "uoe_sample"])
def test_builds_and_runs_at_every_lra_scale(scale: str, name: str) -> None:
    cfg = LRA_SCALES[scale].resolve("listops")
    length = min(cfg.data.max_len, 256)  # the forward is length-generic; keep the test fast
    model = _build(name, cfg.model, cfg.data.max_len).eval()
    tokens, lengths = _batch(2, length)
    with torch.no_grad():
        out = model((tokens,), (lengths,))
    assert out.logits.shape == (2, 3) and torch.isfinite(out.logits).all()
    assert len(out.layer_stats) == cfg.model.depth
    for layer in out.layer_stats:
        assert set(layer) == {"mixer", "ffn"}
        for stats in layer.values():
            assert set(stats) == {
                "tokens_per_expert",
                "load_max_over_mean",
                "load_cv",
                "dropped_fraction",
                "aux_loss",
            }


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["uoe", "uoe_paper"])
def test_cuda_forward_matches_cpu(name: str) -> None:
    model = _build(name).eval()
    tokens, lengths = _batch(4, 64, seed=4)
    with torch.no_grad():
        want = model((tokens,), (lengths,)).logits
        got = model.cuda()((tokens.cuda(),), (lengths.cuda(),)).logits.cpu()
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)
