"""Plots from the fixture runs: the expected files, axes, labels and one series per model
(figure objects are inspected, not pixels), and one colour per model across plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex

from bench.records import Record
from bench.report.colors import FIXED, model_color
from bench.report.frame import Runs, load_runs
from bench.report.plot_figure import COLUMN_WIDTH_IN, file_stem, save
from bench.report.plots import accuracy_vs, all_plots, scaling
from bench.report.plots_training import expert_load, training_curves

FIXTURES = Path(__file__).parent / "fixtures" / "report"
MODELS = ["full_attention", "switch", "linformer"]


def _bubbles(ax) -> list[PathCollection]:
    """The scatter markers of an axes (its other collections are error bars)."""
    return [c for c in ax.collections if isinstance(c, PathCollection)]


@pytest.fixture(scope="module")
def lra():
    return load_runs([FIXTURES / "lra"])


def test_accuracy_vs_flops_has_one_bubble_per_model_sized_by_memory(lra) -> None:
    ((stem, fig),) = accuracy_vs(lra, "flops_fwd_per_example")
    assert stem == "accuracy_vs_flops_fwd_lra_tiny"
    ax = fig.axes[0]
    # FLOPs as counted, the SI prefix on the ticks (4M), never on the label as well
    assert ax.get_xlabel() == "forward FLOPs per example (FLOP)" and ax.get_xscale() == "log"
    assert ax.get_ylabel() == "average test accuracy (%), 95 % interval"
    (models,) = fig.legends  # below the axes, off the data
    labels = [t.get_text() for t in models.get_texts()]
    assert labels[:3] == ["full_attention", "switch*", "linformer*"], "incomplete rows marked"
    assert models.get_title().get_text() == "* averaged over fewer tasks"
    key = ax.get_legend()  # the bubble-size key, beside the axes
    assert key.get_title().get_text() == "peak train memory"
    assert [t.get_text() for t in key.get_texts()] == ["2 MB", "4 MB", "8 MB"]
    points = {c.get_label().rstrip("*"): c for c in _bubbles(ax)}
    assert len(points) == 3
    # full_attention: mean accuracy over listops 41 and text 62 = 51.5 at 4e6 FLOPs = 4 M.
    assert list(points["full_attention"].get_offsets()[0]) == pytest.approx([4e6, 51.5])
    # linformer: text only, 60 at 2 M. Areas grow with memory (4e6 < 6e6 < 8e6 bytes).
    assert list(points["linformer"].get_offsets()[0]) == pytest.approx([2e6, 60.0])
    sizes = [points[m].get_sizes()[0] for m in ("linformer", "switch", "full_attention")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert fig.get_size_inches()[0] == pytest.approx(COLUMN_WIDTH_IN)


def test_colours_are_fixed_per_model_across_plots(lra) -> None:
    colors = {name: model_color(name) for name in MODELS}
    (_, bubbles), *_ = accuracy_vs(lra, "flops_fwd_per_example")
    curves = dict(training_curves(lra))["curves_lra_tiny_listops"]
    for c in _bubbles(bubbles.axes[0]):
        assert to_hex(c.get_facecolor()[0]) == colors[c.get_label().rstrip("*")]
    for line in curves.axes[0].get_lines():
        assert to_hex(line.get_color()) == colors[line.get_label()]
    assert len(set(colors.values())) == len(colors), "distinct colours"
    assert len(set(FIXED.values())) == len(FIXED), "every registered model its own colour"


def test_a_models_colour_depends_on_its_name_only() -> None:
    """Adding a model recolours no other: a colour is a function of the name alone."""
    before = {name: model_color(name) for name in FIXED}
    assert model_color("deepseek_moe") == model_color("deepseek_moe")
    assert {name: model_color(name) for name in FIXED} == before


def test_scaling_plot_has_speed_and_memory_lines_per_model() -> None:
    ((stem, fig),) = scaling(load_runs([FIXTURES / "eff"]))
    assert stem == "scaling_eff_tiny"
    speed, memory = fig.axes
    assert speed.get_ylabel().startswith("training steps/s") and memory.get_ylabel().endswith(
        "(MB)"
    )
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
    assert ax.get_title() == "ffn: load / mean"  # the model is in the figure's title
    # layer 0: [10, 20, 30, 40] / 25; layer 1 balanced.
    expected = np.array([[0.4, 0.8, 1.2, 1.6], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(ax.get_images()[0].get_array(), expected)


def test_training_curves_average_seeds(lra) -> None:
    plots = dict(training_curves(lra))
    assert set(plots) == {"curves_lra_tiny_listops", "curves_lra_tiny_text"}
    loss_ax, dev_ax = plots["curves_lra_tiny_listops"].axes
    labels = [line.get_label() for line in dev_ax.get_lines()]
    assert labels == ["full_attention", "switch", "majority rate (test)"]
    assert list(dev_ax.get_lines()[-1].get_ydata()) == [20.0, 20.0], "the fixture's 0.2"
    full = dev_ax.get_lines()[0]
    # seeds 0.40, 0.42 -> dev curve [acc - 0.1, acc] averaged: [31, 41] %
    assert list(full.get_xdata()) == [50, 100]
    assert full.get_ydata() == pytest.approx([31.0, 41.0])
    assert dev_ax.get_xlabel() == "training step" and loss_ax.get_ylabel() == "training loss"


def test_all_plots_are_saved_as_png_and_pdf(lra, tmp_path: Path) -> None:
    plots, omitted = all_plots(lra)
    assert omitted == [
        "accuracy vs speed plot omitted: no ok record carries train_steps_per_s with accuracy",
        "scaling with length plot omitted: no ok record carries train_steps_per_s or "
        "memory_peak_train_bytes of one workload at two lengths",
        "equal-budget curves plot omitted: no ok record carries dev_curve_examples or "
        "dev_curve_train_s",
        "Pareto front plot omitted: no ok record carries accuracy and flops_fwd_per_example of "
        "two models",
    ]
    stem, fig = plots[0]
    png, pdf = save(fig, tmp_path, stem)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"


def test_variant_labels_become_plain_file_names(lra, tmp_path: Path) -> None:
    _, fig = all_plots(lra)[0][0]
    png, pdf = save(fig, tmp_path, "curves_lra_small_pathfinder [data.generator=intended]")
    assert png.name == "curves_lra_small_pathfinder_data.generator-intended.png"
    assert pdf.with_suffix(".png") == png and png.exists()
    assert file_stem("expert_load_lra_tiny_listops_uoe[experts=8,top_k=2]") == (
        "expert_load_lra_tiny_listops_uoe_experts-8-top_k-2"
    )
    assert file_stem("curves_lra_tiny_listops") == "curves_lra_tiny_listops", "plain names stay"


def _speed(task: str, model: str, length: int, samples: list[float]) -> Record:
    metrics = {"train_steps_per_s": 1 / samples[1], "latency_train_step_s_samples": samples}
    return Record("r", "s", task, model, "tiny", 0, "ok", metrics=metrics, data={"max_len": length})


def test_scaling_never_joins_different_tasks_and_shows_the_sample_spread() -> None:
    records = (
        _speed("listops", "full_attention", 128, [0.1, 0.2, 0.4]),
        _speed("pathfinder", "full_attention", 1024, [0.5, 1.0, 2.0]),
    )
    configs = {
        ("s", "listops"): {"data.max_len": 128, "train.batch_size": 32},
        ("s", "pathfinder"): {"data.max_len": 1024, "train.batch_size": 8},
    }
    tasks = {"s": ("listops", "pathfinder")}
    assert scaling(Runs(records, tasks, configs=configs)) == [], "two tasks are not one curve"
    configs[("s", "pathfinder")]["train.batch_size"] = 32  # one workload at two lengths
    ((_, fig),) = scaling(Runs(records, tasks, configs=configs))
    (speed,) = fig.axes
    (line,) = speed.get_lines()
    assert list(line.get_xdata()) == [128, 1024] and list(line.get_ydata()) == [5.0, 1.0]
    (band,) = speed.collections  # steps/s from 1 / slowest to 1 / fastest sample
    ys = band.get_paths()[0].vertices[:, 1]
    assert min(ys) == pytest.approx(0.5) and max(ys) == pytest.approx(10.0)
    assert "listops" in speed.get_title() and fig.legends, "task in the title, legend outside"


def test_expert_load_has_one_labelled_colour_scale(lra) -> None:
    fig = dict(expert_load(lra))["expert_load_lra_tiny_listops_switch"]
    heat, bar = fig.axes
    assert "1 = balanced" in bar.get_xlabel()
    image = heat.get_images()[0]
    assert image.get_clim() == pytest.approx((0.0, 2.0))  # at least 0..2 around 1
    assert "listops" in fig.get_suptitle()
    assert "last training batch of seed 0" in fig.get_suptitle().replace("\n", " ")


def test_expert_load_colormap_is_diverging_and_centred_at_one(lra) -> None:
    """1 (balanced) maps to the colormap's white middle, under- and over-use to its two ends
    (blue, red); every cell's value is written in it."""
    fig = dict(expert_load(lra))["expert_load_lra_tiny_listops_switch"]
    heat = fig.axes[0]
    image = heat.get_images()[0]
    assert image.norm.vcenter == 1.0 and image.norm(1.0) == pytest.approx(0.5)
    middle, low, high = (image.cmap(image.norm(v)) for v in (1.0, 0.0, 2.0))
    assert min(middle[:3]) > 0.9, "balanced is near white"
    assert low[2] > low[0] and high[0] > high[2], "under-used blue, over-used red"
    written = [t.get_text() for t in heat.texts]
    assert written[:4] == ["0.40", "0.80", "1.20", "1.60"] and len(written) == 8


def _extents_at_save(fig) -> list[tuple]:
    """(footer, legends, axes) extents as drawn when the figure is saved cropped (`save`)."""
    import io

    from bench.report.plot_figure import FOOTER_GID

    seen = []

    def on_draw(event) -> None:
        r = event.renderer
        (footer,) = [t for t in fig.texts if t.get_gid() == FOOTER_GID]
        seen.append(
            (
                footer.get_window_extent(r),
                [legend.get_window_extent(r) for legend in fig.legends],
                [ax.get_tightbbox(r) for ax in fig.axes],
            )
        )

    fig.canvas.mpl_connect("draw_event", on_draw)
    fig.savefig(io.BytesIO(), format="png", dpi=200, bbox_inches="tight", pad_inches=0.03)
    return seen


def test_the_protocol_footer_sits_below_every_legend_and_axes_of_every_plot_kind(lra) -> None:
    """The footer used to be drawn over the legend below the axes (constrained layout gives the
    bottom margin to the larger of a supxlabel and an outside legend, and a cropped save moved
    the legend onto the footer): in the saved image it lies wholly below both."""
    from bench.report.build import report_figures

    figures = report_figures(lra)[0] + report_figures(load_runs([FIXTURES / "eff"]))[0]
    assert {stem.split("_")[0] for stem, _ in figures} >= {"accuracy", "expert", "curves"}
    for stem, fig in figures:
        (*_, (footer, legends, axes)) = _extents_at_save(fig)
        assert footer.height > 0, stem
        for box in legends + axes:
            assert footer.y1 <= box.y0 + 1e-6, (stem, footer, box)
        assert footer.y0 >= 0, f"{stem}: the footer is inside the saved image"


def _cell(model: str, seed: int, accuracy: float, *, variant: int | None = None,
          flops: float = 4e6, memory: float = 8e6) -> Record:  # fmt: skip
    metrics = {"accuracy": accuracy, "majority_accuracy": 0.2, "flops_fwd_per_example": flops,
               "memory_peak_train_bytes": memory}  # fmt: skip
    extra = {} if variant is None else {"variant": f"experts={variant}",
                                        "variant_values": {"experts": variant}}  # fmt: skip
    return Record("r", "s", "listops", model, "tiny", seed, "ok", metrics=metrics,
                  data={"max_len": 128, "n_test": 500}, **extra)  # fmt: skip


def _vertical_bars(ax) -> dict[float, tuple[float, float]]:
    """x -> (low, high) of the vertical error bars drawn on `ax`."""
    out = {}
    for c in ax.collections:
        for segment in getattr(c, "get_segments", list)():
            (x0, y0), (x1, y1) = segment
            if x0 == x1 and y0 != y1:
                out[x0] = (min(y0, y1), max(y0, y1))
    return out


def test_accuracy_plot_has_the_tables_interval_and_a_chance_line_inside_the_axis() -> None:
    from bench.report.accuracy_stats import cell_stats
    from bench.report.plot_parts import CHANCE_LABEL

    records = [_cell("full_attention", s, a, flops=4e6) for s, a in enumerate((0.6, 0.64, 0.7))]
    records += [_cell("switch", s, a, flops=2e6) for s, a in enumerate((0.55, 0.58, 0.5))]
    ((_, fig),) = accuracy_vs(Runs(tuple(records), {"s": ("listops",)}), "flops_fwd_per_example")
    ax = fig.axes[0]
    bars = _vertical_bars(ax)
    for model, x in (("full_attention", 4e6), ("switch", 2e6)):
        stats = cell_stats([r for r in records if r.model == model])  # the table's interval
        assert bars[x] == pytest.approx((100 * stats.low, 100 * stats.high))
        assert stats.low < stats.mean < stats.high and stats.high - stats.low > 0.02
    (chance,) = [line for line in ax.get_lines() if line.get_label() == CHANCE_LABEL]
    assert list(chance.get_ydata()) == pytest.approx([20.0, 20.0]), "the majority rate, 0.2"
    low, high = ax.get_ylim()
    assert low < 20.0 < high, "the y axis shows chance though every point is far above it"
    assert CHANCE_LABEL in [t.get_text() for t in fig.legends[0].get_texts()]


def _tick_texts(low: float, high: float) -> list[str]:
    from bench.report.plot_figure import new_figure
    from bench.report.plot_parts import si_log_ticks

    fig, axes = new_figure()
    ax = axes[0, 0]
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    si_log_ticks(ax)
    fig.canvas.draw()
    ticks = [*ax.xaxis.get_major_ticks(), *ax.xaxis.get_minor_ticks()]
    inside = [t for t in ticks if low <= t.get_loc() <= high]
    return [t.label1.get_text() for t in sorted(inside, key=lambda t: t.get_loc())]


def test_log_axis_labels_every_decade_in_range_with_si_prefixes() -> None:
    """100..1e7 used to read 100, 1000, 10000, 100000, 1e+06, 1e+07: every decade is
    labelled, in SI, the minor ticks in between left blank."""
    labelled = [t for t in _tick_texts(100, 1e7) if t]
    assert labelled == ["100", "1k", "10k", "100k", "1M", "10M"]
    # under one decade the multiples are labelled too: 350..480 examples/s, 2.5..9 MFLOP
    assert [t for t in _tick_texts(350, 480) if t] == ["350", "400", "450"]
    assert [t for t in _tick_texts(2.5e6, 9e6) if t] == [
        "3M", "4M", "5M", "6M", "7M", "8M", "9M",
    ]  # fmt: skip


def test_sweep_variants_share_a_hue_are_joined_in_order_and_stay_visible() -> None:
    from matplotlib.colors import rgb_to_hsv, to_rgb

    # given out of order, two variants at the very same point
    points = {8: (0.50, 7e6, 9e6), 2: (0.52, 6e6, 5e6), 4: (0.52, 6e6, 7e6)}
    records = [
        _cell("switch", seed, acc + 0.01 * seed, variant=e, flops=flops, memory=memory)
        for e, (acc, flops, memory) in points.items()
        for seed in (0, 1)
    ]
    records += [_cell("full_attention", seed, 0.6, flops=8e6) for seed in (0, 1)]
    ((_, fig),) = accuracy_vs(Runs(tuple(records), {"s": ("listops",)}), "flops_fwd_per_example")
    ax = fig.axes[0]
    bubbles = {c.get_label(): c for c in _bubbles(ax)}
    variants = [f"switch[experts={e}]" for e in (2, 4, 8)]
    hsv = [rgb_to_hsv(to_rgb(to_hex(bubbles[v].get_facecolor()[0]))) for v in variants]
    base = rgb_to_hsv(to_rgb(model_color("switch")))
    assert all(abs(h[0] - base[0]) < 0.02 for h in hsv), "one hue: the model's"
    assert len({round(h[2], 2) for h in hsv}) == 3, "three shades"
    other = rgb_to_hsv(to_rgb(to_hex(bubbles["full_attention"].get_facecolor()[0])))
    assert abs(other[0] - base[0]) > 0.1, "another model keeps its own hue"
    (joined,) = [line for line in ax.get_lines() if line.get_label() == "_sweep"]
    assert list(joined.get_xdata()) == [6e6, 6e6, 7e6], "sweep order 2, 4, 8"
    # [2] and [4] coincide: [2], the smaller bubble, is drawn above [4] and with another marker
    small, large = bubbles[variants[0]], bubbles[variants[1]]
    assert small.get_sizes()[0] < large.get_sizes()[0]
    assert small.get_zorder() > large.get_zorder()
    small_shape, large_shape = (c.get_paths()[0].vertices for c in (small, large))
    assert small_shape.shape != large_shape.shape or not np.allclose(small_shape, large_shape)


def test_sweep_plot_labels_clear_the_title_and_accuracy_has_the_tables_bars_and_chance() -> None:
    """The 2 x 2 sweep figure: no axis label runs into the title or another panel (text
    bounding boxes after a draw); the accuracy panel's bars are the accuracy table's 95 %
    intervals (`cell_stats` of each sweep point) and the chance line (majority rate 0.2) lies
    inside the y limits although every point is far above it."""
    from bench.report.accuracy_stats import cell_stats
    from bench.report.plot_parts import CHANCE_LABEL
    from bench.report.sweep import sweep_plots

    points = {2: (0.50, 7.4e6), 4: (0.56, 7.1e6), 8: (0.61, 6.9e6)}
    records = [
        _cell("switch", seed, acc + 0.03 * seed, variant=e, flops=flops)
        for e, (acc, flops) in points.items()
        for seed in (0, 1, 2)
    ]
    ((_, fig),) = sweep_plots(Runs(tuple(records), {"s": ("listops",)}))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    labels = [(ax, ax.yaxis.label.get_window_extent(renderer)) for ax in fig.axes]
    for ax, box in labels:
        text = " ".join(ax.get_ylabel().split())
        assert not box.overlaps(title), f"{text!r} runs into the title"
        for other in fig.axes:
            if other is not ax:
                assert not box.overlaps(other.get_window_extent(renderer)), text
                assert not box.overlaps(other.yaxis.label.get_window_extent(renderer)), text
                assert not box.overlaps(other.xaxis.label.get_window_extent(renderer)), text
    (ax,) = [a for a in fig.axes if a.get_ylabel().startswith("test accuracy")]
    bars = _vertical_bars(ax)
    assert sorted(bars) == [2, 4, 8]
    for experts in points:
        stats = cell_stats([r for r in records if r.variant == f"experts={experts}"])
        assert bars[experts] == pytest.approx((100 * stats.low, 100 * stats.high))
        assert stats.high - stats.low > 0.02
    (chance,) = [line for line in ax.get_lines() if line.get_label() == CHANCE_LABEL]
    assert list(chance.get_ydata()) == pytest.approx([20.0, 20.0])
    low, high = ax.get_ylim()
    assert low < 20.0 < high
