"""FLOP counting: every registered model's counted FLOPs against its analytic figure, our formulas
against hand-derived counts, the missing-formula guard, fvcore x 2 against ours, and the calflops
convention against hand counts and against calflops itself."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.measure.flops.analytic import analytic_flops
from bench.measure.flops.calflops_convention import CalflopsCounter
from bench.measure.flops.counted import MissingFlopFormula, count_flops
from bench.measure.flops.fvcore_check import fvcore_flops
from models.config import ModelConfig, ModelTask
from models.kernels import dispatch
from models.kernels.cpu import torch_grouped_unsupported
from models.layers.parts import NO_AUX, NoAnalyticFlops
from models.moe import experts
from models.registry import build_model
from models.uoe import smha, uome

CFG = ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64, experts=4, top_k=2)
OWN = {"proj_len": 16, "random_features": 16}  # models' own fields: each reads its own
VOCAB, CLASSES, BATCH, LENGTH = 20, 3, 4, 48


def _task(num_inputs: int = 1) -> ModelTask:
    return ModelTask(CLASSES, VOCAB, num_inputs, LENGTH)


def _batch(num_inputs: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = tuple(torch.randint(1, VOCAB, (BATCH, LENGTH), generator=g) for _ in range(num_inputs))
    lengths = tuple(torch.tensor([LENGTH, 40, 17, 31]) for _ in range(num_inputs))  # padding
    return tokens, lengths


def _build(name: str, num_inputs: int = 1) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, CFG, _task(num_inputs), OWN).eval()


def test_counted_forward_flops_match_the_analytic_figure(model_name: str) -> None:
    model = _build(model_name)
    tokens, lengths = _batch()
    analytic = []
    with torch.no_grad():
        counted = count_flops(
            lambda: analytic.append(analytic_flops(model, lambda: model(tokens, lengths)))
        )
    assert analytic[0].missing == (), f"{model_name}: parts without a formula"
    total = sum(analytic[0].components.values())
    assert counted.total > 0 and total > 0
    assert abs(counted.total - total) <= 0.02 * total, (model_name, counted.by_op, analytic)


def _dense_reference(length: int, batch: int, num_inputs: int) -> int:
    """Hand count for the dense transformer: per layer QKV, scores, values, output, FFN; head."""
    d, h, f = CFG.dim, CFG.heads, CFG.ffn_dim
    per_token = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * f
    per_sequence = CFG.depth * (length * per_token + 2 * 2 * length * length * d)
    head_in = d * (4 if num_inputs == 2 else 1)
    head = 2 * (head_in * f + f * CLASSES)
    assert h  # heads do not change the count: H * (L * L * D/H) = L * L * D
    return batch * (num_inputs * per_sequence + head)


@pytest.mark.parametrize("num_inputs", [1, 2])
def test_dense_model_flops_equal_a_hand_count(num_inputs: int) -> None:
    model = _build("full_attention", num_inputs)
    tokens, lengths = _batch(num_inputs)
    with torch.no_grad():
        counted = count_flops(lambda: model(tokens, lengths))
        analytic = analytic_flops(model, lambda: model(tokens, lengths))
    expected = _dense_reference(LENGTH, BATCH, num_inputs)
    assert counted.total == expected
    assert sum(analytic.components.values()) == expected  # a dual encoder counts both passes


def test_fvcore_times_two_equals_ours_for_the_dense_model() -> None:
    model = _build("full_attention")
    tokens, lengths = _batch()
    with torch.no_grad():
        ours = count_flops(lambda: model(tokens, lengths)).total
    theirs = fvcore_flops(model, tokens, lengths)
    assert theirs.flops == ours
    assert "aten::scaled_dot_product_attention" not in theirs.unsupported  # our handle counts it
    assert "aten::gelu" in theirs.unsupported  # fvcore's list of ops it did not count is kept


def test_fvcore_times_two_equals_ours_for_every_model(model_name: str) -> None:
    """Every registered model, on the kernels the dispatcher picks here (the tests around this
    one pin the mixers, kernel paths and batch shapes where fvcore's own handles miscounted)."""
    model = _build(model_name)
    tokens, lengths = _batch()
    with torch.no_grad():
        ours = count_flops(lambda: model(tokens, lengths)).total
    theirs = fvcore_flops(model, tokens, lengths)
    assert theirs.flops == ours, (model_name, dict(theirs.unsupported))


@pytest.mark.parametrize("num_inputs", [1, 2])
@pytest.mark.parametrize("name", ["linformer", "performer", "performer_relu"])
def test_fvcore_times_two_equals_ours_for_the_efficient_mixers(name: str, num_inputs: int) -> None:
    """fvcore's own matmul handle drops the batch dimensions only the second operand has
    (Linformer's E (k, L) @ K (B, H, L, Dh)): it undercounted Linformer by 8.7 % here; and its
    einsum handle is numpy's cost estimate, not a MAC count."""
    model = _build(name, num_inputs)
    tokens, lengths = _batch(num_inputs)
    with torch.no_grad():
        ours = count_flops(lambda: model(tokens, lengths)).total
    assert fvcore_flops(model, tokens, lengths).flops == ours
    # A batch of 32: numpy's einsum_path estimate (fvcore's einsum handle) is 2 MACs off here.
    g = torch.Generator().manual_seed(5)
    tokens = tuple(torch.randint(1, VOCAB, (32, LENGTH), generator=g) for _ in range(num_inputs))
    lengths = tuple(torch.randint(1, LENGTH + 1, (32,), generator=g) for _ in range(num_inputs))
    with torch.no_grad():
        ours = count_flops(lambda: model(tokens, lengths)).total
    assert fvcore_flops(model, tokens, lengths).flops == ours


def test_a_disagreeing_cross_check_is_flagged_in_the_metrics() -> None:
    from bench.measure.cell import fvcore_disagreement

    agree = {"flops_fwd_per_example": 1e6, "flops_fwd_per_example_fvcore": 1e6}
    assert fvcore_disagreement(agree) == ""
    assert fvcore_disagreement({"flops_fwd_per_example": 1e6}) == ""  # nothing to compare
    low = {"flops_fwd_per_example": 1e6, "flops_fwd_per_example_fvcore": 8.4e5}
    assert fvcore_disagreement(low).startswith("fvcore counts 0.8400 x the counted")


@pytest.mark.parametrize(
    "name", ["switch", "mixtral", "uoe", "uoe_paper", "uoe_patch", "uoe_sample"]
)
@pytest.mark.parametrize("impl", ["mm", "torch", "bmm"])
def test_fvcore_times_two_equals_ours_for_moe_models(name: str, impl: str, monkeypatch) -> None:
    """fvcore sees our grouped-GEMM autograd Functions as opaque Python ops; handles count them."""

    def choose(weight: torch.Tensor, rows: int | None = None) -> str:
        # torch._grouped_mm refuses unaligned widths (Mixtral's SwiGLU hidden): mm, as dispatch
        return "mm" if impl == "torch" and torch_grouped_unsupported(weight) else impl

    for module in (dispatch, experts, smha, uome):  # the parts import `choose` by name
        monkeypatch.setattr(module, "choose", choose)
    torch.manual_seed(0)
    model = _build(name).eval()
    tokens, lengths = _batch()
    with torch.no_grad():
        ours = count_flops(lambda: model(tokens, lengths)).total
    theirs = fvcore_flops(model, tokens, lengths)
    assert not any("GroupedMm" in op for op in theirs.unsupported)
    assert theirs.flops == ours


def test_cpu_attention_forward_and_backward_formulas() -> None:
    b, h, lq, lk, e = 2, 3, 8, 12, 4
    q = torch.randn(b, h, lq, e, requires_grad=True)
    k = torch.randn(b, h, lk, e, requires_grad=True)
    v = torch.randn(b, h, lk, e, requires_grad=True)
    mask = torch.ones(b, 1, 1, lk, dtype=torch.bool)
    forward = count_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert forward.total == 2 * 2 * b * h * lq * lk * e  # scores and values, 2 per multiply-add
    assert forward.by_op == {"aten._scaled_dot_product_flash_attention_for_cpu": forward.total}

    def step() -> None:
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        (y * y).sum().backward()

    # Backward: recomputed scores plus dScores, dV, dQ, dK: five GEMMs of the same size.
    assert count_flops(step).total == forward.total + 5 * forward.total // 2


def test_grouped_mm_forward_and_weight_gradient_formulas() -> None:
    rows, k, n, experts = 10, 4, 8, 3
    x = torch.randn(rows, k, requires_grad=True)
    w = torch.randn(experts, k, n, requires_grad=True)
    offsets = torch.tensor([3, 7, 10], dtype=torch.int32)
    forward = count_flops(lambda: torch._grouped_mm(x, w, offsets))
    assert forward.total == 2 * rows * k * n  # each row is multiplied by one expert only

    def step() -> None:
        y = torch._grouped_mm(x, w, offsets)
        (y * y).sum().backward()

    # dX (2-D x 3-D) and dW (the 2-D x 2-D form, K split by offsets) cost one forward each;
    # a formula treating dW as E full GEMMs would give E x too much here.
    assert count_flops(step).total == 3 * forward.total


def test_guard_names_a_matmul_like_op_without_a_formula() -> None:
    signal = torch.randn(64)
    with pytest.raises(MissingFlopFormula, match=r"aten\._fft_r2c"):
        count_flops(lambda: torch.fft.rfft(signal))
    lenient = count_flops(lambda: torch.fft.rfft(signal), strict=False)
    assert lenient.unformulated == ("aten._fft_r2c",) and lenient.total == 0


def test_guard_flags_custom_ops_until_a_formula_is_given() -> None:
    lib = torch.library.Library("measure_test", "FRAGMENT")
    lib.define("scale2(Tensor x) -> Tensor")
    lib.impl("scale2", lambda x: x * 2, "CPU")
    op = torch.ops.measure_test.scale2
    x = torch.randn(4, 4)
    with pytest.raises(MissingFlopFormula, match=r"measure_test\.scale2"):
        count_flops(lambda: op(x))
    counted = count_flops(lambda: op(x), formulas={op: lambda *a, out_shape=None, **k: 0})
    assert counted.total == 0 and counted.unformulated == ()


def test_elementwise_ops_and_profiler_ranges_are_not_flagged() -> None:
    x = torch.randn(8, 8)
    with torch.profiler.record_function("attention"):
        counted = count_flops(lambda: torch.softmax(x * 2 + 1, -1))
    assert counted.total == 0 and counted.unformulated == ()


class _FourierFFN(nn.Module):
    """An FFN part whose FFT has no formula, counted or analytic: the cell measurement must not
    record an undercount of either."""

    phases = ()

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        return torch.fft.fft(x, dim=1).real, NO_AUX  # (B, L, D)

    def analytic_flops(self, x_shape: torch.Size, aux) -> dict[str, float]:
        raise NoAnalyticFlops("an FFT has no closed form here yet")


def test_a_cell_with_an_unformulated_op_records_no_counted_flops() -> None:
    from bench.measure.cell import measure_model
    from suites.config import MeasureConfig, TrainConfig
    from suites.data import Split

    model = _build("full_attention")
    model.encoder.blocks[0].ffn = _FourierFFN()
    tokens, lengths = _batch()
    batch = Split(tokens, lengths, torch.zeros(BATCH, dtype=torch.int64))
    cfg = MeasureConfig(warmup=0, min_count=1, min_time_s=0.0, fvcore=False)
    metrics = measure_model(
        model, batch, train=TrainConfig(lr=1e-3), device=torch.device("cpu"), cfg=cfg
    ).metrics
    assert "aten._fft_c2c" in metrics["flops_unformulated_ops"]
    assert "flops_fwd_per_example" not in metrics and "flops_train_per_example" not in metrics
    assert metrics["flops_analytic_missing"] == [
        "encoder.blocks.0.ffn (_FourierFFN): an FFT has no closed form here yet"
    ]
    assert "flops_fwd_per_example_analytic" not in metrics
    assert metrics["memory_peak_train_bytes"] > 0 and metrics["latency_infer_s_median"] > 0


def test_calflops_convention_counts_what_calflops_patches_by_hand() -> None:
    """Hand counts of calflops 0.3.2's rules (its pytorch_ops.py), call by call: a multiply-add
    is 2, biases of addmm/baddbmm count, softmax/activations 1 and an affine LayerNorm 5 per
    element; `@`, torch.mm, torch.bmm, `*`, `.softmax()` and SDPA are not seen."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(3, 5, 8, generator=g), torch.randn(8, 2, generator=g)
    b1, b2 = torch.randn(4, 3, 6, generator=g), torch.randn(4, 6, 7, generator=g)
    q = torch.randn(2, 1, 7, 4, generator=g)
    lin, norm = nn.Linear(8, 16), nn.LayerNorm(8)
    unseen = CalflopsCounter()
    with unseen:
        x @ w
        torch.mm(x[0], w)
        torch.bmm(b1, b2)
        x * x
        x + x
        x.softmax(-1)
        F.scaled_dot_product_attention(q, q, q)
    assert unseen.flops == 0 and unseen.by_function == {}
    counter = CalflopsCounter()
    with counter:
        lin(x)  # F.linear: 2 x 15 tokens x 8 x 16
        x.matmul(w)  # Tensor.matmul: 2 x 120 x 2
        torch.matmul(x, w)
        torch.baddbmm(torch.zeros(4, 3, 7), b1, b2)  # 2 x 4*3*6 x 7 + the 84 added
        F.softmax(x, dim=-1)  # 120
        F.gelu(x)  # 120
        norm(x)  # 5 x 120
        torch.mul(x, x)  # 120
        torch.add(x, lin.bias[:8])  # (3, 5, 8) and (8,) aligned from the FIRST dim: 8 x 5 x 8
        torch.add(torch.ones(2, 1), torch.ones(1, 4))  # max per dim: 2 x 4
        x.add(1.0)  # a tensor and a number: 120
        torch.einsum("bld,dk->blk", x, w)  # numpy's path count: 2 x 15 x 8 x 2, + 1 (numpy's)
    assert counter.by_function == {
        "F.linear": 2 * 15 * 8 * 16,
        "Tensor.matmul": 2 * 120 * 2,
        "torch.matmul": 2 * 120 * 2,
        "torch.baddbmm": 2 * 72 * 7 + 84,
        "F.softmax": 120,
        "F.gelu": 120,
        "F.layer_norm": 5 * 120,
        "torch.mul": 120,
        "torch.add": 8 * 5 * 8 + 2 * 4,
        "Tensor.add": 120,
        "torch.einsum": 2 * 15 * 8 * 2 + 1,
    }
    assert counter.flops == sum(counter.by_function.values())
    assert torch.matmul is _ORIGINAL_MATMUL and torch.Tensor.add is _ORIGINAL_ADD  # put back
    with pytest.raises(RuntimeError, match="do not nest"), counter, CalflopsCounter():
        pass
    assert F.linear is _ORIGINAL_LINEAR


_ORIGINAL_MATMUL, _ORIGINAL_ADD, _ORIGINAL_LINEAR = torch.matmul, torch.Tensor.add, F.linear


def _calflops_counter():
    """calflops 0.3.2's own `calculate_flops` (calflops/flops_counter.py). The package's
    __init__ imports transformers (for its Hugging Face helper), which this project does not
    install; its counter needs torch and numpy only, so it is loaded without the __init__."""
    spec = importlib.util.find_spec("calflops")
    if spec is None:
        pytest.skip("calflops is not installed (a dev dependency: pip install -e .[dev])")
    package = types.ModuleType("calflops")
    package.__path__ = list(spec.submodule_search_locations)
    saved = {k: v for k, v in sys.modules.items() if k == "calflops" or k.startswith("calflops.")}
    sys.modules["calflops"] = package
    try:
        return importlib.import_module("calflops.flops_counter").calculate_flops
    finally:
        for name in [k for k in sys.modules if k == "calflops" or k.startswith("calflops.")]:
            del sys.modules[name]
        sys.modules.update(saved)


class _Positional(nn.Module):
    """calculate_flops passes tensors only; our models take tuples of inputs and lengths."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model((tokens,), (lengths,)).logits


def _calflops_and_ours(model: nn.Module) -> tuple[int, int]:
    calculate_flops = _calflops_counter()
    (tokens,), (lengths,) = _batch()
    with torch.no_grad():
        theirs, _, _ = calculate_flops(
            _Positional(model), args=[tokens, lengths], print_results=False, output_as_string=False
        )
        with CalflopsCounter() as ours:
            model((tokens,), (lengths,))
    return theirs, ours.flops


def test_calflops_convention_equals_calflops_itself(model_name: str) -> None:
    """Every registered model, on a padded batch: our figure is calflops' own count, exactly."""
    theirs, ours = _calflops_and_ours(_build(model_name))
    assert ours == theirs > 0


def test_calflops_convention_equals_calflops_on_the_released_backbone() -> None:
    """uoe_paper on the released backbone (RMSNorm, rotary step, sum-over-L pooling) is the
    released LRA model; its attention's torch.matmul counts there too."""
    cfg = replace(CFG, norm="rms", rope=True, pool="sum_over_L")
    torch.manual_seed(0)
    model = build_model("uoe_paper", cfg, _task(), OWN).eval()
    theirs, ours = _calflops_and_ours(model)
    assert ours == theirs > 0


@pytest.mark.parametrize("name", ["uoe", "uoe_paper", "mixtral", "switch"])
def test_analytic_count_names_the_kernel_each_routed_part_ran(name: str, monkeypatch) -> None:
    """Every routed part reports its grouped-GEMM path, the one the dispatcher chose."""
    model = _build(name)
    tokens, lengths = _batch()
    with torch.no_grad():
        kernels = analytic_flops(model, lambda: model(tokens, lengths)).kernels
    routed = [n for n, m in model.named_modules() if hasattr(m, "gemm_kernel")]
    assert sorted(kernels) == sorted(routed) and routed
    assert set(kernels.values()) <= set(dispatch.IMPLEMENTATIONS)
    # Force the concurrent path (2 threads, any width): the record must say so.
    monkeypatch.setattr(dispatch, "CONCURRENT_MIN_WEIGHT_ELEMENTS", 1)
    monkeypatch.setattr(dispatch.torch, "get_num_threads", lambda: 2)
    with torch.no_grad():
        forced = analytic_flops(model, lambda: model(tokens, lengths)).kernels
    assert set(forced.values()) == {"mm_concurrent"}
