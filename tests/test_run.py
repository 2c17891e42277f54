"""End-to-end: `bench run` on the LRA suite at a reduced tiny scale, resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.metric_catalog import HARNESS
from bench.records import read_records
from bench.runner import cell as runner_cell
from bench.train import TrainingDiverged

FAST = [
    "--set",
    "train.steps=30",
    "--set",
    "train.eval_every=15",
    "--set",
    "data.n_train=300",
    "--set",
    "data.n_dev=60",
    "--set",
    "data.n_test=60",
    "--set",
    "data.max_len=64",
    # Pathfinder images are 32 x 32 = 1024 tokens: a handful of them, two steps.
    *("--set", "pathfinder.data.max_len=1024", "--set", "pathfinder.data.n_train=16"),
    *("--set", "pathfinder.data.n_dev=8", "--set", "pathfinder.data.n_test=8"),
    *("--set", "pathfinder.train.steps=2", "--set", "pathfinder.train.eval_every=1"),
]


def _run(tmp_path: Path, *extra: str, run_id: str = "r") -> int:
    return main(
        [
            "run",
            "--suite",
            "lra",
            "--scale",
            "tiny",
            "--models",
            "full_attention",
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            run_id,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
            *FAST,
            *extra,
        ]
    )


@pytest.mark.slow
def test_tiny_lra_run_writes_ok_listops_and_skipped_others(tmp_path, capsys) -> None:
    assert _run(tmp_path) == 0
    run_dir = tmp_path / "runs" / "r"
    records = {r.task: r for r in read_records(run_dir)}
    # appended as each cell finishes: under the parallel schedule the skipped cells come first
    assert set(records) == {"listops", "text", "retrieval", "image", "pathfinder"}
    out = capsys.readouterr().out
    summary_tasks = [
        line.split("|")[1].strip() for line in out.splitlines() if "full_attention" in line
    ]
    assert summary_tasks == ["listops", "pathfinder"], "the table follows the suite's task order"
    folded = [line.split(":")[0] for line in out.splitlines() if " cell skipped: " in line]
    assert folded == ["text", "retrieval", "image"], "one line per skipped task, in suite order"

    listops = records["listops"]
    assert listops.status == "ok" and listops.params_total == listops.params_active > 0
    for key in (
        "accuracy",
        "dev_accuracy",
        "majority_accuracy",
        "train_loss_final",
        "train_time_s",
        "examples_per_s",
    ):
        assert isinstance(listops.metrics[key], float), key
    assert 0.0 < listops.metrics["majority_accuracy"] < 1.0
    assert listops.data["n_train"] == 300 and listops.data["max_len"] == 64
    for task in ("text", "retrieval", "image"):  # no data in the fresh cache
        assert records[task].status == "skipped"
        assert f"bench data download {task}" in records[task].reason
        assert records[task].metrics == {}, "a skipped cell has no metrics, never zeros"
    assert records["pathfinder"].status == "ok"  # generated

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["plan"]["models"] == ["full_attention"]
    assert manifest["configs"]["listops"]["train"]["steps"] == 30
    for key in ("git_sha", "git_dirty", "torch", "python", "cpu", "torch_threads"):
        assert key in manifest["environment"]
    assert set(manifest["environment"]["packages"]) == {"fvcore", "triton", "numpy"}
    assert manifest["reference_model"] == "full_attention"
    assert manifest["kernels"] == {}, "full attention has no routed part"

    assert main(["report", str(run_dir)]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if "full_attention" in line)
    assert row.count("n/a") == 3 and "*" in row
    assert f"{100 * listops.metrics['accuracy']:.2f}" in row


def test_a_diverged_cell_is_recorded_as_error_and_the_run_goes_on(tmp_path, monkeypatch) -> None:
    def diverge(*args, **kwargs):
        raise TrainingDiverged("loss became nan at step 3; lower train.lr")

    monkeypatch.setattr(runner_cell, "train_and_evaluate", diverge)
    assert _run(tmp_path, "--seeds", "0,1") == 1
    records = read_records(tmp_path / "runs" / "r")
    listops = [r for r in records if r.task == "listops"]
    assert [r.status for r in listops] == ["error", "error"]
    assert listops[0].reason.startswith("diverged: loss became nan")
    assert listops[0].params_total > 0
    assert len(records) == 2 + 4 * 2, "one record per (task, seed) cell, skipped ones included"


def test_an_unexpected_exception_is_recorded_with_its_type(tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in layer 1")

    monkeypatch.setattr(runner_cell, "train_and_evaluate", broken)
    assert _run(tmp_path) == 1
    listops = next(r for r in read_records(tmp_path / "runs" / "r") if r.task == "listops")
    assert (listops.status, listops.reason) == ("error", "RuntimeError: shape mismatch in layer 1")


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_out_of_memory_is_recorded_as_oom(tmp_path, monkeypatch, error) -> None:
    def exhaust(*args, **kwargs):
        raise error

    monkeypatch.setattr(runner_cell, "train_and_evaluate", exhaust)
    assert _run(tmp_path, "--tasks", "listops") == 1
    (listops,) = read_records(tmp_path / "runs" / "r")
    assert listops.status == "oom" and "lower train.batch_size" in listops.reason
    assert listops.metrics == {}


def test_data_dir_without_the_official_files_is_skipped_with_where_it_looked(tmp_path) -> None:
    assert _run(tmp_path, "--tasks", "listops", "--data-dir", str(tmp_path)) == 0
    (listops,) = read_records(tmp_path / "runs" / "r")
    assert listops.status == "skipped" and str(tmp_path) in listops.reason


def test_data_that_does_not_fit_is_an_error_record_and_the_run_goes_on(tmp_path) -> None:
    long_source = "( [SM " + "1 " * 80 + "] )"  # 82 tokens, more than max_len 64
    for name in ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv"):
        (tmp_path / name).write_text(f"Source\tTarget\n{long_source}\t0\n")
    assert _run(tmp_path, "--tasks", "listops,text", "--data-dir", str(tmp_path)) == 1
    listops, text = read_records(tmp_path / "runs" / "r")
    assert listops.status == "error" and "listops.data.max_len=128" in listops.reason
    assert text.status == "skipped"


def test_bad_input_is_refused_before_a_run_starts(tmp_path, capsys) -> None:
    assert _run(tmp_path, "--set", "train.stepz=3") == 2
    assert "train fields:" in capsys.readouterr().err
    assert _run(tmp_path, "--scale", "huge") == 2
    assert "scales: tiny, small, paper" in capsys.readouterr().err
    assert _run(tmp_path, "--tasks", "listopz") == 2
    assert "Did you mean: lra/listops" in capsys.readouterr().err
    assert _run(tmp_path, "--device", "tpu9") == 2
    assert "is not a torch device" in capsys.readouterr().err
    assert _run(tmp_path, "--seeds", "0,one") == 2
    assert "expected comma-separated integers" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_existing_run_is_not_overwritten(tmp_path, capsys) -> None:
    assert _run(tmp_path, "--tasks", "text") == 0
    assert _run(tmp_path, "--tasks", "text") == 2
    assert "resume it with --resume" in capsys.readouterr().err


def _comparable(records) -> list[tuple]:
    """Records minus what legitimately differs between two runs: ids, and every figure the
    metric catalog says is not fixed by the seed (timings, memory peaks, the machine's load)."""
    varies = {m.name for m in HARNESS if m.kind in ("timing", "memory", "environment")}
    varies -= {"train_stopped_at_step", "numerics"}  # environment, but the same in both runs
    return sorted(
        (
            r.task,
            r.model,
            r.seed,
            r.status,
            r.reason,
            r.params_total,
            json.dumps(
                {k: v for k, v in r.metrics.items() if k not in varies},
                sort_keys=True,
            ),
            json.dumps(r.data, sort_keys=True),
        )
        for r in records
    )


@pytest.mark.slow
def test_a_killed_and_resumed_run_ends_with_the_same_records(tmp_path) -> None:
    base = [
        sys.executable,
        "-m",
        "bench.cli",
        "run",
        "--suite",
        "lra",
        "--scale",
        "tiny",
        "--models",
        "full_attention",
        "--tasks",
        "listops,text",
        "--seeds",
        "0,1,2",
        "--out",
        str(tmp_path / "runs"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
        *FAST,
        "--set",
        "train.steps=120",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*base, "--run-id", "whole"], check=True, env=env, capture_output=True)

    killed = subprocess.Popen(
        [*base, "--run-id", "killed"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    records_path = tmp_path / "runs" / "killed" / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        if records_path.exists() and records_path.read_text().count("\n") >= 1:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    finished_before = len(read_records(records_path.parent))
    assert 0 < finished_before < 6

    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.cli",
            "run",
            "--resume",
            str(records_path.parent),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    whole = read_records(tmp_path / "runs" / "whole")
    again = read_records(records_path.parent)
    assert len(again) == 6
    assert _comparable(again) == _comparable(whole)


def test_resume_refuses_a_new_plan(tmp_path, capsys) -> None:
    assert main(["run", "--resume", str(tmp_path), "--suite", "lra"]) == 2
    assert "--resume reruns the stored plan" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "missing")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.gpu
def test_tiny_listops_runs_on_cuda(tmp_path) -> None:
    assert _run(tmp_path, "--tasks", "listops", "--device", "cuda") == 0
    (listops,) = read_records(tmp_path / "runs" / "r")
    assert listops.status == "ok"


def test_a_failed_measurement_is_its_own_outcome_and_is_rerun_on_resume(
    tmp_path, monkeypatch, capsys
) -> None:
    """Training finished, measuring failed: the record keeps the accuracy, says why the
    measured figures are absent, the run exits 1 (0 when allowed), and --resume reruns it. (An
    out-of-memory while measuring is an `oom` record instead: tests/faults/test_fault_06_oom.py.)"""
    real = runner_cell.measure_model

    def exhaust(*args, **kwargs):
        raise RuntimeError("a measuring kernel refused the shape")

    monkeypatch.setattr(runner_cell, "measure_model", exhaust)
    assert _run(tmp_path, "--tasks", "listops") == 1
    assert "measurements failed" in capsys.readouterr().err
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.status == "ok" and record.reason == ""
    assert record.measurement_error.startswith("measurements failed: RuntimeError: a measuring")
    assert 0 <= record.metrics["accuracy"] <= 1 and "flops_fwd_per_example" not in record.metrics
    assert _run(tmp_path, "--tasks", "listops", "--allow-measurement-errors", run_id="s") == 0
    report_out = capsys.readouterr().out
    assert "ok, measurement failed" in report_out

    monkeypatch.setattr(runner_cell, "measure_model", real)
    assert main(["run", "--resume", str(tmp_path / "runs" / "r"), "--no-progress"]) == 0
    store = (tmp_path / "runs" / "r" / "records.jsonl").read_text().splitlines()
    assert len(store) == 2, "the unmeasured cell was run again"
    (again,) = read_records(tmp_path / "runs" / "r")
    assert again.measurement_error == "" and again.metrics["flops_fwd_per_example"] > 0


def test_the_manifest_names_each_routed_parts_kernel_and_the_reference_model() -> None:
    """The dispatcher's rule (models/kernels/dispatch.py), applied by hand: on the CPU in fp32,
    torch._grouped_mm when both GEMM widths are multiples of 4 floats, else the mm path."""
    from bench.runner import RunPlan, resolve
    from bench.runner.manifest import kernels

    plan = RunPlan(
        "smoke", "tiny", ("full_attention", "switch", "mixtral", "uoe"), ("first",), (0,)
    )
    resolved = resolve(plan)
    assert resolved.suite.reference_model == "full_attention"
    found = kernels(resolved)["first"]
    assert "full_attention" not in found and "performer" not in found  # no routed part
    depth = resolved.configs["first"].model.depth
    # MoE parts pick the concurrent path per call from their rows: the manifest states the rule.
    rows_rule = ""  # smoke's experts (32 x 64) are below the concurrent path's weight size
    # switch: experts of 32 -> 64 -> 32, all multiples of 4.
    switch = {f"encoder.blocks.{i}.ffn": "torch" + rows_rule for i in range(depth)}
    assert found["switch"] == switch
    # mixtral: SwiGLU hidden round(2 * 64 / (3 * 2)) = 21, up width 42: not a multiple of 4.
    assert found["mixtral"] == {f"encoder.blocks.{i}.ffn": "mm" + rows_rule for i in range(depth)}
    # uoe: head-experts 32 -> 3 x 16 -> 32 and MLP slices 32 -> 16 -> 32.
    assert set(found["uoe"].values()) == {"torch"} and len(found["uoe"]) == 2 * depth
