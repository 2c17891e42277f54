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


def _sweep(root: Path, run_id: str, accuracies: dict[tuple[str, int], list[float]], **kw) -> Path:
    """A sweep run of switch over model.experts (`bench run --sweep model.experts=...`):
    (task, experts) -> the accuracy of seeds 0, 1, ...; each record's config carries its sweep
    point's experts, as `bench run` writes it; `kw` edits the config as in `_run`."""
    config = {s: {**f, **kw.get(s, {})} for s, f in CONFIG.items()}
    tasks = tuple(dict.fromkeys(task for task, _ in accuracies))
    seeds = tuple(range(max(len(a) for a in accuracies.values())))
    run_dir = root / run_id
    plan = RunPlan("lra", "tiny", ("switch",), tasks, seeds, sweep=("model.experts=2,4,8",))
    write_manifest(run_dir, Manifest(run_id, "now", plan, configs=dict.fromkeys(tasks, config)))
    store = RecordStore(run_dir)
    for (task, experts), seed_accuracies in accuracies.items():
        for seed, acc in enumerate(seed_accuracies):
            store.append(
                Record(
                    run_id=run_id,
                    suite="lra",
                    task=task,
                    model="switch",
                    scale="tiny",
                    seed=seed,
                    status="ok",
                    metrics={"accuracy": acc, "majority_accuracy": 0.1},
                    data={"max_len": config["data"]["max_len"]},
                    config={**config, "model": {**config["model"], "experts": experts}},
                    variant=f"experts={experts}",
                    variant_values={"model.experts": experts},
                )
            )
    return run_dir


def _rows(text: str) -> dict[str, list[str]]:
    """A Markdown table's rows as label -> its other cells."""
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_a_sweeps_points_are_rows_of_one_task_column(tmp_path) -> None:
    """The swept field is named by each row (switch[experts=2]): it splits no task, so the
    three points are compared on one listops column with complete averages."""
    accuracies = {
        ("listops", 2): [0.30, 0.34],
        ("listops", 4): [0.40, 0.42],
        ("listops", 8): [0.50, 0.52],
    }
    a = _sweep(tmp_path, "a", accuracies)
    runs = load_runs([a])
    assert runs.tasks("lra") == ("listops",) and not runs.notes
    report = build_report([a], "md")
    table = report.text.split("\n\n")[1]
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert [h.strip() for h in header.split("|")[1:-1]] == ["model", "listops", "average"]
    rows = _rows(table)
    for experts, mean in ((2, "32.00"), (4, "41.00"), (8, "51.00")):
        listops, average = rows[f"switch[experts={experts}]"]
        assert listops.strip("*_<u>/").startswith(f"{mean} ["), listops
        assert average.strip("*_<u>/ ≈") == mean, "complete: no '*' of a row lacking a task"
    assert "n/a" not in table


def test_sweeps_that_differ_in_anything_else_still_split(tmp_path) -> None:
    """Two sweeps of the same points at 100 and 50 training steps: each point's records of the
    two runs are never averaged together."""
    a = _sweep(tmp_path, "a", {("listops", 2): [0.30], ("listops", 4): [0.40]})
    b = _sweep(tmp_path, "b", {("listops", 2): [0.20], ("listops", 4): [0.24]}, train={"steps": 50})
    runs = load_runs([a, b])
    assert runs.tasks("lra") == ("listops [train.steps=100]", "listops [train.steps=50]")
    by_cell = {(r.task, r.variant): r.metrics["accuracy"] for r in runs.records}
    assert by_cell == {
        ("listops [train.steps=100]", "experts=2"): 0.30,
        ("listops [train.steps=100]", "experts=4"): 0.40,
        ("listops [train.steps=50]", "experts=2"): 0.20,
        ("listops [train.steps=50]", "experts=4"): 0.24,
    }
    assert any("2 different configs" in n for n in runs.notes), runs.notes


def test_a_missing_cell_carries_no_chance_mark(tmp_path) -> None:
    """experts=4 is at chance on text (the majority rate, 10 %); experts=2 has no text record:
    its cell is plain n/a, the chance mark belongs to the measured cell only."""
    accuracies = {
        ("listops", 2): [0.30],
        ("listops", 4): [0.40],
        ("text", 4): [0.10],
    }
    report = build_report([_sweep(tmp_path, "a", accuracies)], "md")
    rows = _rows(report.text.split("\n\n")[1])
    assert rows["switch[experts=2]"][1] == "n/a"
    assert rows["switch[experts=4]"][1].endswith("°")
    assert "n/a°" not in report.text
