"""What `bench run` tells the user and records about where it is: `--dry-run` of the LRA suite,
`--data-dir TASK=DIR` for two tasks (recorded in the manifest), `--resume` with a new data
directory, `--threads` in the manifest, the load average of each cell, and the run log's lines
(per cell, the ETA, the end counts and next commands)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.manifest import read_manifest
from bench.records import (
    BUSY_KEY,
    LOAD_AFTER_KEY,
    LOAD_BEFORE_KEY,
    CellId,
    Record,
    read_records,
)
from bench.runner.machine_load import busy_warning
from bench.runner.run_log import RunLog

FAST = ["--no-progress", "--models", "full_attention"]
FAST += ["--set", "train.steps=4", "--set", "train.eval_every=2", "--set", "data.max_len=64"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """`bench run` sets torch's thread count for its process; restore it for other tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _args(tmp_path: Path, run_id: str = "r") -> list[str]:
    return ["--out", str(tmp_path / "runs"), "--run-id", run_id, "--cache-dir", str(tmp_path)]


def test_dry_run_of_the_lra_suite_lists_cells_configs_and_data(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "lra", "--models", "full_attention,uoe", "--dry-run"]
    assert main([*argv, *_args(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("lra at scale tiny: 10 cells (5 tasks x 2 models x 1 seeds)")
    cells = [line.split()[-1] for line in out if line.strip().startswith("cell:")]
    assert len(cells) == 10 and "lra/pathfinder/uoe/tiny/seed0" in cells
    configs = [line for line in out if line.strip().startswith("config:")]
    assert len(configs) == 5 and all("train.steps=" in c and "data.max_len=" in c for c in configs)
    assert sum(line.strip().startswith("data:") for line in out) == 5
    assert not (tmp_path / "runs").exists(), "a dry run writes nothing"


def test_data_dir_per_task_for_two_tasks_is_used_and_recorded(tmp_path, capsys) -> None:
    text_dir, retrieval_dir = tmp_path / "imdb_here", tmp_path / "aan_here"
    text_dir.mkdir()
    retrieval_dir.mkdir()
    argv = ["run", "--suite", "lra", "--tasks", "text,retrieval", *FAST, *_args(tmp_path)]
    argv += ["--data-dir", f"text={text_dir}", "--data-dir", f"retrieval={retrieval_dir}"]
    assert main(argv) == 0
    run_dir = tmp_path / "runs" / "r"
    records = {r.task: r for r in read_records(run_dir)}
    assert records["text"].status == records["retrieval"].status == "skipped"
    assert (
        str(text_dir) in records["text"].reason and str(retrieval_dir) not in records["text"].reason
    )
    assert str(retrieval_dir) in records["retrieval"].reason
    plan = read_manifest(run_dir).plan
    assert dict(plan.task_data_dirs) == {"text": str(text_dir), "retrieval": str(retrieval_dir)}
    assert plan.data_dir is None
    err = capsys.readouterr().err
    assert "bench data download text" in err, "the skip reason is printed in full"


def test_a_bad_data_dir_is_refused_naming_the_fix(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "lra", *FAST, *_args(tmp_path)]
    assert main([*argv, "--data-dir", f"nosuchtask={tmp_path}"]) == 2
    assert "tasks: listops, text" in capsys.readouterr().err
    assert main([*argv, "--data-dir", f"text={tmp_path / 'missing'}"]) == 2
    assert "TASK=DIR" in capsys.readouterr().err


def _imdb(root: Path) -> None:
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(6):
                (folder / f"{i}_5.txt").write_text(f"{label} review {i} " * 3)


def test_resume_takes_a_new_data_dir_and_records_it(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "lra", "--tasks", "text", *FAST, *_args(tmp_path)]
    argv += ["--set", "data.n_train=8", "--set", "data.n_dev=4", "--set", "data.n_test=8"]
    assert main(argv) == 0
    run_dir = tmp_path / "runs" / "r"
    assert [r.status for r in read_records(run_dir)] == ["skipped"]
    data = tmp_path / "imdb"
    _imdb(data)
    capsys.readouterr()
    assert (
        main(["run", "--resume", str(run_dir), "--no-progress", "--data-dir", f"text={data}"]) == 0
    )
    (resumed,) = read_records(run_dir)  # the latest record of the cell
    assert resumed.status == "ok", resumed.reason
    manifest = read_manifest(run_dir)
    assert dict(manifest.plan.task_data_dirs) == {"text": str(data)}
    (change,) = manifest.data_dir_changes
    assert change["task_data_dirs"] == [{}, {"text": str(data)}]
    assert "[1/1] lra/text/full_attention/s0 ok" in capsys.readouterr().err


def test_threads_and_load_average_are_recorded(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "smoke", "--tasks", "first", *FAST, *_args(tmp_path)]
    assert main([*argv, "--threads", "1"]) == 0
    manifest = read_manifest(tmp_path / "runs" / "r")
    assert manifest.plan.threads == 1 and manifest.environment["torch_threads"] == 1
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.metrics[LOAD_BEFORE_KEY] >= 0 and record.metrics[LOAD_AFTER_KEY] >= 0
    assert main([*argv[:-2], *_args(tmp_path, "z"), "--threads", "0"]) == 2
    err = capsys.readouterr().err
    assert "--threads 0: need at least 1" in err


def test_busy_means_load_above_the_core_count() -> None:
    assert busy_warning(1.5, 2.0, 2) == ""
    assert "3.4 > 2 cores" in busy_warning(3.4, 1.0, 2)
    assert busy_warning(None, None, 2) == ""


def _record(task: str, model: str, status: str = "ok", seconds: float = 10.0, **kw) -> Record:
    metrics = kw.pop("metrics", {"accuracy": 0.344} if status == "ok" else {})
    return Record(
        "r", "lra", task, model, "tiny", 0, status, metrics=metrics, duration_s=seconds, **kw
    )


def test_the_run_log_says_where_the_run_is() -> None:
    cells = [CellId("lra", t, m, "tiny", 0) for t in ("listops", "text") for m in ("a", "b")]
    cells.append(CellId("lra", "listops", "c", "tiny", 0))
    out = io.StringIO()
    log = RunLog(Path("runs/x"), {"listops": "generated", "text": "files in /x"}, out=out)
    log.begin(cells, done=0)
    assert out.getvalue().splitlines() == [
        "run runs/x: 5 cells to run over 2 task(s)",
        "  data listops: generated",
        "  data text: files in /x",
    ]
    out.truncate(0)
    out.seek(0)
    reason = (
        "text: IMDB not found; looked in /x/aclImdb, /x. "
        + "Fetch it with `bench data download text`" * 3
    )
    log.cell_end(_record("listops", "a", seconds=11.3))
    log.cell_end(_record("text", "a", "skipped", seconds=0.5, reason=reason))
    log.cell_end(
        _record("listops", "b", seconds=20.0, metrics={"accuracy": 0.3, BUSY_KEY: "load 3.4 > 2"})
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/5] lra/listops/a/s0 ok  acc 34.4 %  11 s", "no ETA before text ran"
    # left: listops/b, listops/c (listops mean 11.3 s) and text/b (text mean 0.5 s): 23.1 s
    assert lines[1] == "[2/5] lra/text/a/s0 skipped  0 s  ETA 23 s"
    assert lines[2] == f"    {reason}", "the reason in full"
    assert lines[3].startswith("[3/5] lra/listops/b/s0 ok  acc 30.0 %  20 s")
    assert lines[4] == "    busy machine: load 3.4 > 2 (tagged `busy` below)"
    log.cell_end(_record("listops", "c", metrics={"accuracy": 0.3, BUSY_KEY: "load 3.4 > 2"}))
    assert out.getvalue().splitlines()[-1].endswith("  busy"), "said in full once, then tagged"
    log.cell_end(_record("text", "b", "skipped", seconds=0.5, reason=reason))
    assert out.getvalue().splitlines()[-1] == "[5/5] lra/text/b/s0 skipped  0 s  (reason as above)"
    records = [_record("listops", "a"), _record("text", "a", "skipped", reason="absent")]
    log.finish(records, Path("results/runs/x"))
    tail = out.getvalue().splitlines()[-3:]
    assert tail == [
        "done: 2 cells: 1 ok, 1 skipped",
        "next: bench report results/runs/x",
        "      bench run --resume results/runs/x   (reruns the cells not ok)",
    ]
    assert json.dumps(tail)  # plain text


def test_latency_presets_are_set_with_set_and_recorded(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "smoke", "--tasks", "first", *FAST, *_args(tmp_path)]
    argv += ["--set", "measure.min_count=7", "--set", "measure.min_time_s=0"]
    assert main(argv) == 0
    (record,) = read_records(tmp_path / "runs" / "r")
    assert len(record.metrics["latency_train_step_s_samples"]) == 7, "tiny's preset takes 3"
    measure = read_manifest(tmp_path / "runs" / "r").configs["first"]["measure"]
    rules = {k: measure[k] for k in ("warmup", "min_count", "min_time_s")}
    assert rules == {"warmup": 1, "min_count": 7, "min_time_s": 0.0}
    assert record.config["measure"] == measure, "the record says how it was measured too"
    bad = ["run", "--suite", "smoke", *FAST, *_args(tmp_path, "b"), "--set", "measure.count=3"]
    assert main(bad) == 2
    assert (
        "measure fields: fvcore, min_count, min_time_s, profile_active" in capsys.readouterr().err
    )
    assert main([*bad[:-1], "measure.min_count=0"]) == 2
    assert "measure.min_count=0 is out of range: it must be an integer >= 1" in (
        capsys.readouterr().err
    )


def test_the_measurement_settings_belong_to_the_suites_scale() -> None:
    """A scale's preset is part of its config (a suite that adds a scale adds its own), and
    `bench profile` reads the profiler schedule from it too."""
    from bench import registries
    from suites.config import MEASURE_PAPER, MEASURE_TINY

    assert registries.SUITES.get("smoke").scales["tiny"].base.measure == MEASURE_TINY
    assert registries.SUITES.get("lra").scales["paper"].base.measure == MEASURE_PAPER
    assert registries.SUITES.get("lra_efficiency").scales["tiny"].base.measure == MEASURE_TINY


def test_bench_profile_writes_under_its_own_folder_not_runs() -> None:
    from bench.cli import _parser

    args = _parser().parse_args(["profile", "uoe", "lra/listops"])
    assert args.out == Path("results") / "profiles", "runs/ holds run directories only"


def test_the_end_table_folds_skipped_cells_into_one_line_per_task_and_reason() -> None:
    from bench.report.summary import summary_table

    reason = "text: IMDB not found; looked in /a, /b. " + "Fetch it with `bench data download text`"
    records = [_record("text", m, "skipped", reason=reason) for m in ("a", "b")]
    records.append(_record("image", "a", "skipped", reason="image: CIFAR-10 not found"))
    records.append(_record("listops", "a", "error", reason="diverged: loss nan"))
    records.append(_record("listops", "b", "error", reason="diverged: loss nan"))
    lines = summary_table(records).splitlines()
    assert len(lines) == 2 + 2 + 3  # header, rule, the two failed rows; their reason; 2 folded
    assert [line.split("|")[-2].strip() for line in lines[2:4]] == ["[1]", "[1]"]
    assert lines[4:] == [
        "[1] diverged: loss nan",
        f"text: 2 cells skipped: {reason.removeprefix('text: ')}",
        "image: 1 cell skipped: CIFAR-10 not found",
    ]
    only_skipped = summary_table(records[:3]).splitlines()
    assert only_skipped == lines[-2:]  # no empty table


def test_the_end_table_marks_a_chance_accuracy_and_says_what_the_mark_means() -> None:
    from bench.report.chance import CHANCE_NOTE
    from bench.report.summary import summary_table

    def cell(model: str, accuracy: float) -> Record:
        metrics = {"accuracy": accuracy, "majority_accuracy": 0.5}
        metrics |= {"train_time_s": 1.0, "examples_per_s": 10.0}
        return _record("pathfinder", model, metrics=metrics, data={"n_test": 200})

    # 2 standard errors of 50 % on 200 examples: 7.07 points
    lines = summary_table([cell("a", 0.57), cell("b", 0.58)]).splitlines()
    assert lines[2].split("|")[5].strip() == "57.00°"
    assert lines[3].split("|")[5].strip() == "58.00"
    assert lines[-1] == CHANCE_NOTE
    assert CHANCE_NOTE not in summary_table([cell("b", 0.58)])
