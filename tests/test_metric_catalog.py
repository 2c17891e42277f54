"""The metric catalog: every figure a record of any suite carries is declared in it (with its
unit, direction, kind and display), the README's figure list is generated from it, its entries
are consistent, and a suite's own figure reaches reports and `bench compare` through the
manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import registries
from bench.cli import main
from bench.metric_catalog import (
    CATALOG_BEGIN,
    CATALOG_END,
    HARNESS,
    UnknownMetric,
    catalog_for,
    sampled_range,
)
from bench.records import RecordStore, read_records
from bench.report.build import build_report
from suites.metric import Display, Metric

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "report" / "lra"
QUICK = [
    *("--set", "train.steps=2", "--set", "train.eval_every=2", "--set", "data.n_train=64"),
    *("--set", "data.n_dev=16", "--set", "data.n_test=16"),
]
QUICK_MEASURE = [
    *("--set", "measure.warmup=0", "--set", "measure.min_count=1"),
    *("--set", "measure.min_time_s=0"),
]


def _figures_of(run_dir: Path) -> set[str]:
    names = set()
    for record in read_records(run_dir):
        assert record.status in ("ok", "skipped"), (record.cell, record.reason)
        names |= set(record.metrics)
        names |= {n for n in ("params_total", "params_active") if getattr(record, n) is not None}
    return names


def _undeclared(tmp_path: Path, suite: str, run_id: str, *argv: str) -> set[str]:
    """The figures a run of `suite` wrote that its catalog (harness + suite) lacks."""
    args = ["run", "--suite", suite, "--out", str(tmp_path), "--run-id", run_id, "--no-progress"]
    assert main([*args, "--cache-dir", str(tmp_path / "cache"), *argv]) == 0
    declared = catalog_for(registries.SUITES.get(suite).metrics)
    return {name for name in _figures_of(tmp_path / run_id) if name not in declared}


def test_every_model_writes_only_declared_figures(tmp_path) -> None:
    """Every registered model on one smoke task, and an efficiency cell: all figures known."""
    assert _undeclared(tmp_path, "smoke", "s", "--tasks", "first", *QUICK, *QUICK_MEASURE) == set()
    efficiency = ["--tasks", "1k", "--models", "full_attention", *QUICK_MEASURE]
    assert _undeclared(tmp_path, "lra_efficiency", "e", *efficiency) == set()


@pytest.mark.slow
def test_every_suite_writes_only_declared_figures(tmp_path) -> None:
    """Every task of every suite (absent LRA data is a skipped cell, with no figures)."""
    for suite in registries.SUITES.names():
        tasks = registries.SUITES.get(suite).tasks
        argv = ["--models", "full_attention,switch,uoe", *QUICK_MEASURE]
        if registries.SUITES.get(suite).kind == "accuracy":
            argv += QUICK
        if suite == "lra":  # at tiny, Pathfinder and Image are 1024 tokens: keep the cells short
            argv += ["--set", "train.batch_size=4", "--tasks", ",".join(tasks)]
        assert _undeclared(tmp_path, suite, suite, *argv) == set(), suite


def test_the_readme_figure_list_is_the_generated_catalog() -> None:
    text = (ROOT / "results" / "README.md").read_text(encoding="utf-8")
    block = text.split(CATALOG_BEGIN, 1)[1].split(CATALOG_END, 1)[0].strip()
    assert block == HARNESS.markdown_table(), "regenerate: bench list metrics --markdown"


def test_catalog_entries_are_consistent() -> None:
    for metric in HARNESS:
        if metric.samples:
            samples = HARNESS.get(metric.samples)
            assert samples.shape == "samples" and samples.kind == metric.kind == "timing"
        if metric.cost:
            assert metric.shape == "scalar", metric.name
        if metric.kind in ("timing", "memory") and metric.shape == "scalar":
            assert metric.direction != "neither", metric.name
    assert len(HARNESS) == len(set(HARNESS.names()))


def test_an_unknown_figure_is_refused_naming_the_nearest() -> None:
    with pytest.raises(UnknownMetric, match="Did you mean: accuracy"):
        HARNESS.get("acuracy")
    clash = Metric("accuracy", "acc", "fraction", "lower", "seeded", "accuracy", "a clash")
    with pytest.raises(ValueError, match="declared twice"):
        HARNESS.with_metrics([clash])


def test_a_rate_takes_its_spread_from_the_inverted_samples() -> None:
    rate = HARNESS.get("train_steps_per_s")
    metrics = {"latency_train_step_s_samples": [0.1, 0.2, 0.4]}
    assert sampled_range(rate, metrics) == pytest.approx((2.5, 10.0))
    median = HARNESS.get("latency_train_step_s_median")
    assert sampled_range(median, metrics) == (0.1, 0.4)
    assert sampled_range(HARNESS.get("examples_per_s"), metrics) is None


PERPLEXITY = Metric(
    "perplexity", "test perplexity", "", "lower", "seeded", "accuracy",
    "exp of the mean next-token cross-entropy on test", Display("number", 4),
)  # fmt: skip


def _with_own_figure(tmp_path: Path, name: str, value: float) -> Path:
    """A copy of the fixture run whose suite declares `perplexity` and whose ok records carry it."""
    run = tmp_path / name
    shutil.copytree(FIXTURE, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["suite_metrics"] = [PERPLEXITY.to_dict()]
    (run / "manifest.json").write_text(json.dumps(manifest))
    records = read_records(run)
    (run / "records.jsonl").unlink()
    store = RecordStore(run)
    for r in records:
        if r.status == "ok":
            r = r.__class__(**{**r.__dict__, "metrics": {**r.metrics, "perplexity": value}})
        store.append(r)
    return run


def test_a_suites_own_figure_is_gated_and_reported_as_declared(tmp_path, capsys) -> None:
    base = _with_own_figure(tmp_path, "base", 20.0)
    assert main(["compare", str(base), str(_with_own_figure(tmp_path, "same", 20.0))]) == 0
    assert "not in the metric catalog" not in capsys.readouterr().out
    code = main(["compare", str(base), str(_with_own_figure(tmp_path, "worse", 21.0))])
    out = capsys.readouterr().out
    assert code == 1 and "worse: 8 figure(s) in 8 cell(s)  x1.1" in out, "seeded: --rel-tol"
    assert main(["compare", str(base), str(tmp_path / "worse"), "--rel-tol", "0.1"]) == 0
    report = build_report([base], "csv", plots=False)
    assert "perplexity" in report.text.splitlines()[0]


def _undeclare(run: Path) -> Path:
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["suite_metrics"]  # as if the suite had not declared its figure
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_a_figure_no_catalog_declares_is_printed_but_never_gated(tmp_path, capsys) -> None:
    base = _undeclare(_with_own_figure(tmp_path, "base", 20.0))
    new = _undeclare(_with_own_figure(tmp_path, "new", 99.0))
    code = main(["compare", str(base), str(new)])
    out = capsys.readouterr().out
    assert code == 0 and "not in the metric catalog, printed but not gated: perplexity" in out


def test_bench_list_metrics_prints_every_figure(capsys) -> None:
    assert main(["list", "metrics"]) == 0
    lines = capsys.readouterr().out.splitlines()
    from bench import registries

    registries.discover()
    own = sum(len(e.obj.metrics) for e in registries.SUITES.entries())
    assert len(lines) == len(HARNESS) + own
    perplexity = next(line for line in lines if line.split()[0] == "test_perplexity")
    assert perplexity.split()[1:3] == ["lower", "seeded"] and perplexity.endswith("(suite lm)")
    accuracy = next(line for line in lines if line.split()[0] == "accuracy")
    assert accuracy.split()[1:4] == ["[fraction]", "higher", "seeded"]
