"""A part made of parts (`models.layers.composite`), against its children run alone: a shared
dense expert beside routed experts (DeepSeekMoE) is, output for output, the sum of the two; its
aux loss and statistics are the routed child's; its analytic FLOPs are the children's formulas
and the FLOPs counted while it runs; the measurements count it once and report its kernel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.measure.flops.analytic import analytic_flops
from bench.measure.flops.counted import count_flops
from bench.train import _routing_lists
from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import build_classifier, parameter_counts
from models.layers.composite import CompositePart, merge_aux
from models.layers.ffn import DenseFFN
from models.layers.parts import NO_AUX, NoAnalyticFlops, PartAux, kernel_paths
from models.layers.ranges import MLP, MOE_PHASES
from models.moe.experts import MoEConfig, MoEFFN
from models.moe.routing import STAT_KEYS

D, HIDDEN, EXPERTS = 16, 24, 4
LENGTHS = torch.tensor([12, 7, 1])


def _routed(**overrides) -> MoEFFN:
    cfg = dict(dim=D, hidden=HIDDEN // 2, experts=EXPERTS, top_k=2, router="top_k")
    cfg.update(activation="swiglu", balance_loss_weight=0.01)
    cfg.update(overrides)
    return MoEFFN(MoEConfig(**cfg))


def _deepseek_ffn() -> CompositePart:
    torch.manual_seed(0)
    return CompositePart({"shared": DenseFFN(D, HIDDEN, 0.0), "routed": _routed()}).eval()


def _input() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(len(LENGTHS), 12, D, generator=torch.Generator().manual_seed(1))  # (B, L, D)
    mask = torch.arange(12)[None, :] < LENGTHS[:, None]  # (B, L)
    return x, mask


def test_output_is_the_sum_of_the_children_run_alone() -> None:
    ffn = _deepseek_ffn()
    x, mask = _input()
    with torch.no_grad():
        y, _ = ffn(x, mask)
        shared, _ = ffn.shared(x, mask)
        routed, _ = ffn.routed(x, mask)
    torch.testing.assert_close(y, shared + routed, rtol=0, atol=0)
    assert not torch.allclose(y, shared) and not torch.allclose(y, routed)


def test_aux_loss_and_statistics_are_the_routed_childs() -> None:
    ffn = _deepseek_ffn()
    x, mask = _input()
    y, aux = ffn(x, mask)
    _, alone = ffn.routed(x, mask)
    assert aux.loss is not None and alone.loss is not None
    torch.testing.assert_close(aux.loss, alone.loss, rtol=0, atol=0)
    assert tuple(aux.stats) == STAT_KEYS
    for key in STAT_KEYS:
        torch.testing.assert_close(aux.stats[key], alone.stats[key], rtol=0, atol=0)
    assert float(aux.stats["tokens_per_expert"].sum()) == 2 * int(LENGTHS.sum())  # top-2
    assert set(aux.children) == {"shared", "routed"}
    assert aux.children["shared"] is NO_AUX
    assert dict(aux.children["routed"].sizes) == dict(alone.sizes)
    assert aux.children["routed"].kernel == alone.kernel != ""
    assert aux.sizes == {} and aux.kernel == ""  # kept per child, not flattened
    (y.sum() + aux.loss).backward()  # the merged loss reaches the router
    assert ffn.routed.router.weight.grad is not None


def test_analytic_flops_are_the_childrens_and_the_counted_ones() -> None:
    ffn = _deepseek_ffn()
    x, mask = _input()
    with torch.no_grad():
        counted = count_flops(lambda: ffn(x, mask))
        _, aux = ffn(x, mask)
        _, shared_aux = ffn.shared(x, mask)
        _, routed_aux = ffn.routed(x, mask)
    got = ffn.analytic_flops(x.shape, aux)
    want = {f"shared.{k}": v for k, v in ffn.shared.analytic_flops(x.shape, shared_aux).items()}
    want |= {f"routed.{k}": v for k, v in ffn.routed.analytic_flops(x.shape, routed_aux).items()}
    assert got == want
    total = sum(got.values())
    assert abs(counted.total - total) <= 0.02 * total, (counted.by_op, got)
    # Written out: dense up + down over every token; router over the 20 real tokens; SwiGLU
    # experts over the 40 rows top-2 multiplies (up is [gate | up], 2 x hidden wide).
    tokens, real, h = 3 * 12, int(LENGTHS.sum()), HIDDEN // 2
    hand = 2 * 2 * tokens * D * HIDDEN + 2 * real * D * EXPERTS + 2 * 2 * real * D * 3 * h
    assert total == hand


def _model(ffn_factory) -> nn.Module:
    cfg = ModelConfig(dim=D, depth=2, heads=2, ffn_dim=HIDDEN)
    task = ModelTask(num_classes=3, vocab_size=11, num_inputs=1, max_len=12)
    torch.manual_seed(0)
    return build_classifier(
        cfg,
        task,
        make_mixer=lambda _layer: MultiHeadAttention(D, 2, 0.0),
        make_ffn=lambda _layer: ffn_factory(),
    ).eval()


def test_a_model_with_a_composite_part_counts_it_once_and_reports_its_kernels() -> None:
    model = _model(lambda: CompositePart({"shared": DenseFFN(D, HIDDEN, 0.0), "routed": _routed()}))
    tokens = torch.randint(1, 11, (3, 12), generator=torch.Generator().manual_seed(2))
    analytic = []
    with torch.no_grad():
        counted = count_flops(
            lambda: analytic.append(analytic_flops(model, lambda: model((tokens,), (LENGTHS,))))
        )
    (parts,) = analytic
    assert parts.missing == ()
    total = sum(parts.components.values())
    assert abs(counted.total - total) <= 0.02 * total, (counted.by_op, parts.components)
    # Once: the FFN's components appear under its children's names only, each layer once.
    assert "ffn_up" not in parts.components
    assert parts.components["shared.ffn_up"] == 2 * 2 * (3 * 12) * D * HIDDEN  # 2 layers
    assert {"routed.router", "routed.ffn_up", "routed.ffn_down"} <= set(parts.components)
    # Each routed child's kernel, under the module name the manifest finds it by.
    routed = [n for n, m in model.named_modules() if hasattr(m, "gemm_kernel")]
    assert sorted(parts.kernels) == routed == [f"encoder.blocks.{i}.ffn.routed" for i in (0, 1)]


def test_routing_statistics_reach_the_records_and_parameters_are_counted_once() -> None:
    model = _model(lambda: CompositePart({"shared": DenseFFN(D, HIDDEN, 0.0), "routed": _routed()}))
    tokens = torch.randint(1, 11, (3, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model((tokens,), (LENGTHS,))
    routing = _routing_lists(out.layer_stats)  # what a record stores
    assert len(routing) == 2
    for layer in routing:
        assert set(layer) == {"ffn"} and tuple(layer["ffn"]) == STAT_KEYS
        assert len(layer["ffn"]["tokens_per_expert"]) == EXPERTS
        assert sum(layer["ffn"]["tokens_per_expert"]) == 2 * int(LENGTHS.sum())
    total, active = parameter_counts(model)
    routed = [m for m in model.modules() if isinstance(m, MoEFFN)]
    assert total - active == sum(m.inactive_parameter_count() for m in routed) > 0


def test_phases_are_the_childrens_in_order() -> None:
    assert _deepseek_ffn().phases == (MLP, *MOE_PHASES)
    twice = CompositePart({"a": DenseFFN(D, HIDDEN, 0.0), "b": DenseFFN(D, HIDDEN, 0.0)})
    assert twice.phases == (MLP,)


def test_a_statistic_two_children_report_is_refused() -> None:
    ffn = CompositePart({"first": _routed(), "second": _routed()})
    x, mask = _input()
    with pytest.raises(ValueError, match="'first' and 'second' both report the statistic"):
        ffn(x, mask)


def test_losses_add_up_and_none_stays_none() -> None:
    one, two = torch.tensor(0.25), torch.tensor(0.5)
    merged = merge_aux({"a": PartAux(loss=one), "b": NO_AUX, "c": PartAux(loss=two)})
    assert merged.loss is not None and float(merged.loss) == 0.75
    assert merge_aux({"a": NO_AUX, "b": NO_AUX}).loss is None
    assert len(merge_aux({"a": NO_AUX}).stats) == 0


def test_kernels_of_nested_composites_are_named_by_module_path() -> None:
    nested = CompositePart(
        {"shared": DenseFFN(D, HIDDEN, 0.0), "inner": CompositePart({"routed": _routed()})}
    )
    x, mask = _input()
    with torch.no_grad():
        _, aux = nested(x, mask)
    routed = [n for n, m in nested.named_modules() if hasattr(m, "gemm_kernel")]
    assert list(kernel_paths(aux, "ffn")) == [f"ffn.{n}" for n in routed] == ["ffn.inner.routed"]
    assert set(nested.analytic_flops(x.shape, aux)) == {
        "shared.ffn_up",
        "shared.ffn_down",
        "inner.routed.router",
        "inner.routed.ffn_up",
        "inner.routed.ffn_down",
    }
    assert tuple(aux.stats) == STAT_KEYS  # passed up through both levels


class _NoFormula(nn.Module):
    phases = ()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, PartAux]:
        return x, NO_AUX

    def analytic_flops(self, x_shape: torch.Size, aux: PartAux) -> dict[str, float]:
        raise NoAnalyticFlops("no closed form")


def test_a_child_without_a_formula_is_named() -> None:
    ffn = CompositePart({"shared": DenseFFN(D, HIDDEN, 0.0), "odd": _NoFormula()})
    x, mask = _input()
    _, aux = ffn(x, mask)
    with pytest.raises(NoAnalyticFlops, match=r"child 'odd' \(_NoFormula\): no closed form"):
        ffn.analytic_flops(x.shape, aux)
    with pytest.raises(KeyError, match="holds no child 'shared'"):
        ffn.analytic_flops(x.shape, NO_AUX)


def test_bad_children_are_refused_saying_what_to_do() -> None:
    with pytest.raises(ValueError, match="needs child parts"):
        CompositePart({})
    with pytest.raises(TypeError, match=r"child 'plain'.*lacks phases, analytic_flops"):
        CompositePart({"plain": nn.Linear(D, D)})
    for name in ("forward", "phases", "1st", "a.b"):
        with pytest.raises(ValueError, match="use a Python identifier"):
            CompositePart({name: DenseFFN(D, HIDDEN, 0.0)})
