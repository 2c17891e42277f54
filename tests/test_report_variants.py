"""A report over runs whose configs differ never merges their cells: two runs of listops with
100 and 50 training steps are two columns labelled by the step count, not one mean ± std; runs
that agree on the config (seed aside) share a cell, the later run's record winning."""

from __future__ import annotations

from pathlib import Path

from bench.records import Record, RecordStore, write_manifest
from bench.report.build import build_report
from bench.report.frame import load_runs
from bench.report.variants import difference_labels

CONFIG = {
    "model": {"dim": 32},
    "train": {"steps": 100, "lr": 0.001},
    "data": {"max_len": 128, "seed": 0},
}


def _run(root: Path, run_id: str, accuracies: dict[int, float], **changes) -> Path:
    """A run of lra/listops (full_attention, the given seeds); `changes` edits the config as
    section={field: value}."""
    config = {s: {**f, **changes.get(s, {})} for s, f in CONFIG.items()}
    run_dir = root / run_id
    plan = {
        "suite": "lra",
        "scale": "tiny",
        "models": ["full_attention"],
        "tasks": ["listops"],
        "seeds": sorted(accuracies),
    }
    write_manifest(run_dir, {"run_id": run_id, "plan": plan, "configs": {"listops": config}})
    store = RecordStore(run_dir)
    for seed, acc in accuracies.items():
        store.append(
            Record(
                run_id=run_id,
                suite="lra",
                task="listops",
                model="full_attention",
                scale="tiny",
                seed=seed,
                status="ok",
                metrics={"accuracy": acc, "majority_accuracy": 0.1},
                data={"max_len": config["data"]["max_len"]},
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
    assert "35.00 ± 7.07" in build_report([a, b], "md").text  # mean of 30 and 40, sample std


def test_labels_name_only_what_differs() -> None:
    configs = [{"train.steps": 100, "train.lr": 1.0}, {"train.steps": 50, "train.lr": 1.0}]
    assert difference_labels(configs, ["a", "b"]) == ["train.steps=100", "train.steps=50"]
    assert difference_labels([{}, {"train.steps": 5}], ["a", "b"])[0] == "run a"
