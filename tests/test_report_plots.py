"""Plots from the fixture runs: the expected files, axes, labels and one series per model
(figure objects are inspected, not pixels), and one colour per model across plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from bench.report.frame import load_runs, model_colors
from bench.report.plots import (
    COLUMN_WIDTH_IN,
    accuracy_vs,
    all_plots,
    expert_load,
    save,
    scaling,
    training_curves,
)

FIXTURES = Path(__file__).parent / "fixtures" / "report"
MODELS = ["full_attention", "switch", "linformer"]


@pytest.fixture(scope="module")
def lra():
    return load_runs([FIXTURES / "lra"])


def test_accuracy_vs_flops_has_one_bubble_per_model_sized_by_memory(lra) -> None:
    ((stem, fig),) = accuracy_vs(lra, "flops_fwd_per_example", "forward GFLOP per example", 1e-9)
    assert stem == "accuracy_vs_flops_fwd_lra_tiny"
    ax = fig.axes[0]
    assert ax.get_xlabel() == "forward GFLOP per example" and ax.get_xscale() == "log"
    assert ax.get_ylabel() == "average test accuracy (%)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["full_attention", "switch*", "linformer*"], "incomplete rows marked"
    points = {c.get_label().rstrip("*"): c for c in ax.collections}
    assert len(ax.collections) == 3
    # full_attention: mean accuracy over listops 41 and text 62 = 51.5 at 4e6 FLOPs = 0.004 G.
    assert list(points["full_attention"].get_offsets()[0]) == pytest.approx([0.004, 51.5])
    # linformer: text only, 60 at 0.002 G. Areas grow with memory (4e6 < 6e6 < 8e6 bytes).
    assert list(points["linformer"].get_offsets()[0]) == pytest.approx([0.002, 60.0])
    sizes = [points[m].get_sizes()[0] for m in ("linformer", "switch", "full_attention")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert fig.get_size_inches()[0] == pytest.approx(COLUMN_WIDTH_IN)


def test_colours_are_fixed_per_model_across_plots(lra) -> None:
    colors = model_colors(MODELS)
    (_, bubbles), *_ = accuracy_vs(lra, "flops_fwd_per_example", "x", 1e-9)
    curves = dict(training_curves(lra))["curves_lra_tiny_listops"]
    for c in bubbles.axes[0].collections:
        assert to_hex(c.get_facecolor()[0]) == colors[c.get_label().rstrip("*")]
    for line in curves.axes[0].get_lines():
        assert to_hex(line.get_color()) == colors[line.get_label()]
    assert len(set(colors.values())) == len(colors), "distinct colours"


def test_scaling_plot_has_speed_and_memory_lines_per_model() -> None:
    ((stem, fig),) = scaling(load_runs([FIXTURES / "eff"]))
    assert stem == "scaling_eff_tiny"
    speed, memory = fig.axes
    assert speed.get_ylabel() == "training steps/s" and memory.get_ylabel().endswith("(MB)")
    assert speed.get_xlabel() == "sequence length (tokens)"
    lines = {line.get_label(): line for line in speed.get_lines()}
    assert list(lines) == MODELS
    assert list(lines["full_attention"].get_xdata()) == [256, 512]
    assert list(lines["full_attention"].get_ydata()) == [10.0, 4.0]
    assert list(lines["switch"].get_xdata()) == [256], "the oom length has no point"
    memory_lines = {line.get_label(): line for line in memory.get_lines()}
    assert list(memory_lines["linformer"].get_ydata()) == pytest.approx([10.0, 20.0])


def test_expert_load_heatmap_is_layers_by_experts_relative_to_mean(lra) -> None:
    plots = dict(expert_load(lra))
    assert list(plots) == ["expert_load_lra_tiny_listops_switch"], "only MoE cells with routing"
    ax = plots["expert_load_lra_tiny_listops_switch"].axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("expert", "layer")
    assert ax.get_title() == "switch ffn: load / mean"
    # layer 0: [10, 20, 30, 40] / 25; layer 1 balanced.
    expected = np.array([[0.4, 0.8, 1.2, 1.6], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(ax.get_images()[0].get_array(), expected)


def test_training_curves_average_seeds(lra) -> None:
    plots = dict(training_curves(lra))
    assert set(plots) == {"curves_lra_tiny_listops", "curves_lra_tiny_text"}
    loss_ax, dev_ax = plots["curves_lra_tiny_listops"].axes
    assert [line.get_label() for line in dev_ax.get_lines()] == ["full_attention", "switch"]
    full = dev_ax.get_lines()[0]
    # seeds 0.40, 0.42 -> dev curve [acc - 0.1, acc] averaged: [31, 41] %
    assert list(full.get_xdata()) == [50, 100]
    assert full.get_ydata() == pytest.approx([31.0, 41.0])
    assert dev_ax.get_xlabel() == "training step" and loss_ax.get_ylabel() == "training loss"


def test_all_plots_are_saved_as_png_and_pdf(lra, tmp_path: Path) -> None:
    plots, omitted = all_plots(lra)
    assert omitted == [
        "accuracy vs speed plot omitted: no ok record carries train_steps_per_s with accuracy"
    ]
    stem, fig = plots[0]
    png, pdf = save(fig, tmp_path, stem)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
