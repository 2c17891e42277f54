"""A report over runs whose configs differ never merges their cells: two runs of listops with
100 and 50 training steps are two columns labelled by the step count, not one mean ± std; runs
that agree on the config (seed aside) share a cell, the later run's record winning."""

from __future__ import annotations

from pathlib import Path

from bench.manifest import Manifest, write_manifest
from bench.records import Record, RecordStore
from bench.report.build import build_report
from bench.report.config_groups import difference_labels
from bench.report.frame import load_runs
from bench.run_plan import RunPlan

CONFIG = {
    "model": {"dim": 32},
    "train": {"steps": 100, "lr": 0.001},
    "data": {"max_len": 128, "seed": 0},
}


def _run(
    root: Path,
    run_id: str,
    accuracies: dict[int, float],
    model="full_attention",
    own=None,
    **kw,
) -> Path:
    """A run of lra/listops (`model`, the given seeds); `kw` edits the config as
    section={field: value}; `own` are the model's own fields (in its records' model section
    only, as `bench run` writes them)."""
    config = {s: {**f, **kw.get(s, {})} for s, f in CONFIG.items()}
    run_dir = root / run_id
    plan = RunPlan("lra", "tiny", (model,), ("listops",), tuple(sorted(accuracies)))
    write_manifest(run_dir, Manifest(run_id, "now", plan, configs={"listops": config}))
    store = RecordStore(run_dir)
    for seed, acc in accuracies.items():
        store.append(
            Record(
                run_id=run_id,
                suite="lra",
                task="listops",
                model=model,
                scale="tiny",
                seed=seed,
                status="ok",
                metrics={"accuracy": acc, "majority_accuracy": 0.1},
                data={"max_len": config["data"]["max_len"]},
                config={**config, "model": {**config["model"], **(own or {})}},
            )
        )
    return run_dir


def test_runs_with_different_step_counts_are_separate_labelled_columns(tmp_path) -> None:
    a = _run(tmp_path, "a", {0: 0.356})
    b = _run(tmp_path, "b", {0: 0.192}, train={"steps": 50})
    report = build_report([a, b], "md")
    header = next(line for line in report.text.splitlines() if line.startswith("| model"))
    assert "listops [train.steps=100]" in header and "listops [train.steps=50]" in header
    row = next(line for line in report.text.splitlines() if line.startswith("| full_attention"))
    assert "35.60" in row and "19.20" in row
    assert "±" not in report.text, "a step-count difference is not seed spread"
    assert any("2 different configs" in n for n in report.notes), report.notes


def test_a_different_max_len_is_not_shown_under_the_other_length(tmp_path) -> None:
    a = _run(tmp_path, "a", {0: 0.30})
    b = _run(tmp_path, "b", {0: 0.20}, data={"max_len": 256})
    runs = load_runs([a, b])
    assert runs.tasks("lra") == ("listops [data.max_len=128]", "listops [data.max_len=256]")
    lengths = {r.task: r.data["max_len"] for r in runs.records}
    assert lengths == {"listops [data.max_len=128]": 128, "listops [data.max_len=256]": 256}


def test_runs_with_the_same_config_share_cells_and_the_later_wins(tmp_path) -> None:
    a = _run(tmp_path, "a", {0: 0.30, 1: 0.32})
    b = _run(tmp_path, "b", {1: 0.40})
    runs = load_runs([a, b])
    assert runs.tasks("lra") == ("listops",) and not runs.notes
    by_seed = {r.seed: r.metrics["accuracy"] for r in runs.records}
    assert by_seed == {0: 0.30, 1: 0.40}
    # mean of 30 and 40; the interval resamples the two seeds (no test size: seeds only)
    assert "35.00 [30.00, 40.00]" in build_report([a, b], "md").text


def test_labels_name_only_what_differs() -> None:
    configs = [{"train.steps": 100, "train.lr": 1.0}, {"train.steps": 50, "train.lr": 1.0}]
    assert difference_labels(configs, ["a", "b"]) == ["train.steps=100", "train.steps=50"]
    assert difference_labels([{}, {"train.steps": 5}], ["a", "b"])[0] == "run a"


def test_a_models_own_fields_split_only_its_own_records(tmp_path) -> None:
    """linformer's proj_len is in its records' config alone: in one run it splits nothing; two
    runs that differ only in it keep linformer's records apart, labelled by it."""
    a = _run(tmp_path, "a", {0: 0.30})
    b = _run(tmp_path, "b", {0: 0.40}, model="linformer", own={"proj_len": 32})
    runs = load_runs([a, b])
    assert runs.tasks("lra") == ("listops",) and not runs.notes
    c = _run(tmp_path, "c", {0: 0.50}, model="linformer", own={"proj_len": 64})
    runs = load_runs([a, b, c])
    assert set(runs.tasks("lra")) == {
        "listops",
        "listops [model.proj_len=32]",
        "listops [model.proj_len=64]",
    }
    by_task = {(r.model, r.task): r.metrics["accuracy"] for r in runs.records}
    assert by_task[("linformer", "listops [model.proj_len=64]")] == 0.50
    assert by_task[("full_attention", "listops")] == 0.30
