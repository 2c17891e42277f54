"""Profiler traces: a profiled tiny run writes Chrome-trace JSON with the named phase ranges, an
operator table, records that point at them, and a run directory TensorBoard's plugin loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.measure.profile import ProfileConfig, profile_steps
from bench.records import read_records
from models.layers.ranges import ALL_PHASES, ATTENTION, FFN, MOE_PHASES, phase

FAST = [
    *("--set", "train.steps=4", "--set", "train.eval_every=4", "--set", "data.n_train=40"),
    *("--set", "data.n_dev=16", "--set", "data.n_test=16", "--set", "data.max_len=32"),
]
MEASURED = (
    "flops_fwd_per_example",
    "flops_fwd_per_example_analytic",
    "flops_train_per_example",
    "latency_train_step_s_median",
    "latency_train_step_s_p90",
    "latency_infer_s_median",
    "latency_infer_s_p90",
    "memory_peak_train_bytes",
    "memory_peak_infer_bytes",
    "train_steps_per_s",
)


def _annotations(trace: Path) -> set[str]:
    events = json.loads(trace.read_text())["traceEvents"]
    return {e["name"] for e in events if e.get("cat") == "user_annotation"}


@pytest.fixture(scope="module")
def profiled_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    argv = ["run", "--suite", "lra", "--scale", "tiny", "--models", "full_attention"]
    argv += ["--tasks", "listops", "--profile", "--out", str(out), "--run-id", "p"]
    argv += ["--cache-dir", str(out / "cache"), "--no-progress", *FAST]
    assert main(argv) == 0
    return out / "p"


def test_profiled_run_records_measurements_and_existing_trace_paths(profiled_run) -> None:
    (record,) = read_records(profiled_run)
    assert record.status == "ok" and record.reason == ""
    for name in MEASURED:
        assert record.metrics[name] > 0, name
    assert len(record.metrics["latency_train_step_s_samples"]) >= 3
    assert record.metrics["memory_method"].startswith("cpu:")
    trace = profiled_run / record.artifacts["trace"]
    table = profiled_run / record.artifacts["op_table"]
    assert trace.is_file() and trace.name.endswith(".pt.trace.json")
    assert trace.parent.parent == profiled_run / "traces"  # one TensorBoard run per cell
    assert "Self CPU" in table.read_text()


def test_trace_is_chrome_json_with_the_phase_ranges(profiled_run) -> None:
    (record,) = read_records(profiled_run)
    trace = profiled_run / record.artifacts["trace"]
    raw = json.loads(trace.read_text())
    assert {"traceEvents", "schemaVersion"} <= set(raw)
    names = _annotations(trace)
    assert {ATTENTION, FFN} <= names
    assert sum(n.startswith("ProfilerStep#") for n in names) == ProfileConfig().active


def test_tensorboard_plugin_loads_the_run_directory(profiled_run) -> None:
    loader = pytest.importorskip("torch_tb_profiler.profiler.loader", reason="torch-tb-profiler")
    io = pytest.importorskip("torch_tb_profiler.io")
    (record,) = read_records(profiled_run)
    cell_dir = (profiled_run / record.artifacts["trace"]).parent
    with io.Cache() as cache:
        run = loader.RunLoader(cell_dir.name, str(cell_dir), cache).load()
    assert run.workers == ["full_attention"]
    profile = run.get_profile("full_attention", run.get_spans("full_attention")[0])
    views = {v.name for v in profile.views}
    assert {"overall", "operator", "trace"} <= views


def test_moe_phase_ranges_appear_in_a_trace(tmp_path) -> None:
    x = torch.randn(16, 8)

    def step() -> None:
        for name in MOE_PHASES:
            with phase(name):
                x @ x.T

    result = profile_steps(step, tmp_path, "moe", ProfileConfig(wait=0, warmup=1, active=1))
    assert set(MOE_PHASES) <= _annotations(result.trace)
    assert result.op_table.is_file()


def test_unknown_phase_names_are_refused() -> None:
    assert {"router", "dispatch", "expert_gemm", "combine", "attention"} <= set(ALL_PHASES)
    with pytest.raises(ValueError, match="use one of"):
        phase("routing")


def test_bench_profile_command_writes_a_trace(tmp_path, capsys) -> None:
    argv = ["profile", "full_attention", "lra/listops", "--out", str(tmp_path), "--run-id", "x"]
    argv += ["--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    traces = list((tmp_path / "x" / "traces" / "listops-full_attention").glob("*.pt.trace.json"))
    assert len(traces) == 1 and str(traces[0]) in out
    assert ATTENTION in _annotations(traces[0])
