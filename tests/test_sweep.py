"""Sweeps: `--sweep` expansion and its stable variant keys, a variant cell equal to the same
setting given with `--set`, resume / compare / report matching cells by variant, and the
scaling plot's points against the records they come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import registries
from bench.cli import main
from bench.records import read_records
from bench.report.build import build_report
from bench.report.compare import Tolerances
from bench.report.compare_view import compare_runs
from bench.report.frame import load_runs
from bench.report.sweep import sweep_plots, sweep_tables
from bench.runner.plan import RunPlan, resolve
from bench.runner.sweep import variants
from suites.config import ConfigError

FAST = [
    *("--set", "train.steps=6", "--set", "train.eval_every=3"),
    *("--set", "data.n_train=64", "--set", "data.n_dev=16", "--set", "data.n_test=32"),
]


def _run(out: Path, run_id: str, *extra: str) -> int:
    return main(
        [
            "run",
            *("--suite", "smoke", "--tasks", "majority", "--models", "switch"),
            *("--out", str(out), "--run-id", run_id, "--no-progress", "--cache-dir", str(out)),
            *FAST,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def two_seed_sweep(tmp_path_factory) -> Path:
    """switch on smoke/majority at experts 2 and 4, seeds 0 and 1: `<dir>/a`."""
    out = tmp_path_factory.mktemp("sweep")
    assert _run(out, "a", "--sweep", "model.experts=2,4", "--seeds", "0,1") == 0
    return out


def test_the_cross_product_has_stable_short_keys_in_any_flag_order() -> None:
    one = variants(["model.top_k=1,2", "model.experts=4,8"], ["majority"])
    other = variants(["model.experts=4,8", "model.top_k=1,2"], ["majority"])
    keys = [v.key for v in one]
    assert keys == [v.key for v in other]
    assert keys == [
        "experts=4,top_k=1",
        "experts=4,top_k=2",
        "experts=8,top_k=1",
        "experts=8,top_k=2",
    ]
    assert one[3].values == {"model.experts": 8, "model.top_k": 2}  # typed, not text
    assert one[3].overrides == ("model.experts=8", "model.top_k=2")
    # Two axes with one field name keep their whole path, so keys cannot collide.
    both = variants(["model.dim=8,16", "majority.model.dim=32"], ["majority"])
    assert [v.key for v in both] == [
        "majority.model.dim=32,model.dim=8",
        "majority.model.dim=32,model.dim=16",
    ]
    assert [v.key for v in variants([])] == [""]


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (["model.experts"], "key=v1,v2"),
        (["model.experts=2,,4"], "non-empty values"),
        (["model.experts=2,2"], "given twice"),
        (["model.experts=2", "model.experts=4"], "names a key twice"),
        (["model.nonsense=1,2"], "nonsense"),
        (["model.experts=two"], "int"),
    ],
)
def test_bad_sweeps_are_refused_with_the_fix(sweep, message) -> None:
    with pytest.raises(ConfigError, match=message):
        variants(sweep, ["majority"])


def test_a_swept_value_wins_over_a_set_of_the_same_key_and_configs_differ_per_variant() -> None:
    registries.discover()
    plan = RunPlan(
        suite="smoke",
        scale="tiny",
        models=("switch",),
        tasks=("majority", "first"),
        seeds=(0, 1),
        overrides=("model.experts=16", "model.dim=48"),
        sweep=("model.experts=2,4",),
    )
    resolved = resolve(plan)
    assert resolved.config("majority", "experts=2").model.experts == 2
    assert resolved.config("first", "experts=4").model.experts == 4
    assert resolved.config("first", "experts=4").model.dim == 48  # the --set still applies
    assert resolved.config("first").model.experts == 16  # no variant: the plain plan
    cells = plan.cells()
    assert len(cells) == 2 * 2 * 2
    assert [c.variant for c in cells[:4]] == ["experts=2", "experts=2", "experts=4", "experts=4"]


def test_a_sweep_cell_equals_the_same_setting_given_with_set(tmp_path) -> None:
    assert _run(tmp_path, "sweep", "--sweep", "model.experts=2,4") == 0
    assert _run(tmp_path, "plain", "--set", "model.experts=4") == 0
    swept = {r.variant: r for r in read_records(tmp_path / "sweep")}
    (plain,) = read_records(tmp_path / "plain")
    assert set(swept) == {"experts=2", "experts=4"}
    four = swept["experts=4"]
    assert four.variant_values == {"model.experts": 4}
    assert plain.variant == ""
    for figure in ("accuracy", "train_loss_final", "flops_fwd_per_example"):
        assert four.metrics[figure] == plain.metrics[figure], figure
    assert four.params_total == plain.params_total
    assert swept["experts=2"].params_total < four.params_total  # half the experts' weights
    manifest = json.loads((tmp_path / "sweep" / "manifest.json").read_text())
    assert manifest["plan"]["sweep"] == ["model.experts=2,4"]
    assert "variant_configs" not in manifest, "each record carries its sweep point's config"
    assert swept["experts=2"].config["model"]["experts"] == 2
    assert four.config["model"]["experts"] == plain.config["model"]["experts"] == 4


def test_resume_reruns_only_the_variant_without_an_ok_record(tmp_path) -> None:
    assert _run(tmp_path, "r", "--sweep", "model.experts=2,4,8") == 0
    path = tmp_path / "r" / "records.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["variant"] != "experts=4"]
    path.write_text("".join(kept))
    assert main(["run", "--resume", str(tmp_path / "r"), "--no-progress"]) == 0
    after = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["variant"] for r in after] == ["experts=2", "experts=8", "experts=4"]
    assert main(["run", "--resume", str(tmp_path / "r"), "--sweep", "model.experts=2"]) == 2


def test_compare_and_report_match_cells_by_variant(two_seed_sweep, tmp_path) -> None:
    a = two_seed_sweep / "a"
    text, regressed = compare_runs(a, a, Tolerances(factor=100), verbose=True)
    assert not regressed, text
    assert "seed0/experts=2" in text and "seed1/experts=4" in text
    # A run of one variant only: with every cell required, the other variant's are missing
    assert _run(tmp_path, "b", "--sweep", "model.experts=2", "--seeds", "0,1") == 0
    text, regressed = compare_runs(a, tmp_path / "b", Tolerances(factor=100), require_all=True)
    assert regressed
    assert "smoke/majority/switch/tiny/seed0/experts=4: status ok -> absent" in text

    runs = load_runs([a])
    (table,) = sweep_tables(runs)
    assert table.headers[:3] == ("task", "model", "variant")
    by_variant = {row[2].text: row for row in table.rows}
    records = read_records(a)
    for variant, row in by_variant.items():
        accuracies = [r.metrics["accuracy"] for r in records if r.variant == variant]
        assert row[3].text == f"{100 * sum(accuracies) / len(accuracies):.4g}"
    report = build_report([a], "md", tmp_path / "report")
    names = {p.name for p in report.files}
    assert {"sweep_model_experts_smoke_tiny.png", "sweep_smoke_tiny.md"} <= names
    assert "switch[experts=4]" in report.text  # the other tables keep variants apart


def test_the_scaling_plot_draws_the_seed_mean_of_each_variant(two_seed_sweep) -> None:
    runs = load_runs([two_seed_sweep / "a"])
    ((stem, fig),) = sweep_plots(runs)
    assert stem == "sweep_model_experts_smoke_tiny"
    panels = {" ".join(ax.get_ylabel().split()): ax for ax in fig.axes}  # labels wrap
    records = read_records(two_seed_sweep / "a")
    for label, metric, factor in (
        ("test accuracy (%), 95 % interval", "accuracy", 100.0),
        ("peak training memory (MB)", "memory_peak_train_bytes", 1e-6),
    ):
        (line,) = [line for line in panels[label].get_lines() if line.get_label() == "switch"]
        assert list(line.get_xdata()) == [2, 4]
        expected = [
            factor * sum(r.metrics[metric] for r in records if r.variant == f"experts={e}") / 2
            for e in (2, 4)
        ]
        assert list(line.get_ydata()) == pytest.approx(expected, rel=1e-12)
        assert line.get_label() == "switch"
