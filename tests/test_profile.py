"""Profiler traces: a profiled tiny run writes Chrome-trace JSON with the named phase ranges, an
operator table, records that point at them, and a run directory TensorBoard's plugin loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bench import registries
from bench.cli import main
from bench.measure.cell import profile_model
from bench.measure.profile import ProfileConfig
from bench.records import read_records
from models.config import ModelConfig, ModelTask
from models.layers.attention import MultiHeadAttention
from models.layers.classifier import build_classifier
from models.layers.composite import CompositePart
from models.layers.ffn import DenseFFN
from models.layers.ranges import (
    ALL_PHASES,
    ATTENTION,
    FEATURE_MAP,
    FFN,
    MIXER,
    MLP,
    MOE_PHASES,
    SEQ_PROJ,
    SLOTS,
    phase,
    slot,
)
from models.moe.experts import MoEConfig, MoEFFN
from models.registry import build_model
from suites.config import TrainConfig
from suites.data import Split

OWN = {"proj_len": 8, "random_features": 8}  # models' own fields: each reads its own

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
    assert {MIXER, FFN, ATTENTION, MLP} <= names
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


# What each registered model's trace must show: (slot, phase) for every phase range found inside
# a block's `mixer` or `ffn` range. Written out here, independently of the parts' `phases`.
_DENSE_MLP = {("ffn", MLP)}
_MOE_FFN = {("ffn", p) for p in MOE_PHASES}
EXPECTED_PHASES = {
    "full_attention": {("mixer", ATTENTION)} | _DENSE_MLP,
    "linformer": {("mixer", SEQ_PROJ), ("mixer", ATTENTION)} | _DENSE_MLP,
    "performer": {("mixer", FEATURE_MAP), ("mixer", ATTENTION)} | _DENSE_MLP,
    "performer_relu": {("mixer", FEATURE_MAP), ("mixer", ATTENTION)} | _DENSE_MLP,
    "switch": {("mixer", ATTENTION)} | _MOE_FFN,
    "mixtral": {("mixer", ATTENTION)} | _MOE_FFN,
    "uoe": {("mixer", p) for p in (*MOE_PHASES, ATTENTION)} | _MOE_FFN,
    "uoe_paper": {("mixer", p) for p in (*MOE_PHASES, ATTENTION)} | _MOE_FFN,
    "uoe_patch": {("mixer", p) for p in (*MOE_PHASES, ATTENTION)} | _MOE_FFN,
    "uoe_sample": {("mixer", p) for p in (*MOE_PHASES, ATTENTION)} | _MOE_FFN,
    "uoe_causal": {("mixer", p) for p in (*MOE_PHASES, ATTENTION)} | _MOE_FFN,
}


def nested_phases(trace: Path) -> set[tuple[str, str]]:
    """(slot, phase) for every phase range that lies inside a slot range of the same thread."""
    events = [
        e
        for e in json.loads(trace.read_text())["traceEvents"]
        if e.get("cat") == "user_annotation" and e.get("ph") == "X"
    ]
    slots = [e for e in events if e["name"] in SLOTS]
    found = set()
    for e in events:
        if e["name"] not in ALL_PHASES:
            continue
        for s in slots:
            inside = s["ts"] <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"]
            if s["tid"] == e["tid"] and inside:
                found.add((s["name"], e["name"]))
    return found


TRACE_CFG = ModelConfig(dim=16, depth=1, heads=2, ffn_dim=32)
TRACE_TASK = ModelTask(num_classes=3, vocab_size=11, num_inputs=1, max_len=16)


def trace_one_step(model: torch.nn.Module, out: Path, name: str) -> Path:
    """The trace of one profiled training step of `model` on a small padded batch."""
    tokens = torch.randint(1, 11, (4, 16), generator=torch.Generator().manual_seed(0))
    batch = Split((tokens,), (torch.tensor([16, 9, 5, 12]),), torch.tensor([0, 1, 2, 0]))
    result = profile_model(
        model,
        batch,
        train=TrainConfig(lr=1e-3, grad_clip=1.0),
        device=torch.device("cpu"),
        cfg=ProfileConfig(wait=0, warmup=1, active=1),
        trace_dir=out / name,
        trace_worker=name,
    )
    return result.trace


def declared_phases(model: torch.nn.Module) -> set[tuple[str, str]]:
    block = model.encoder.blocks[0]
    return {(slot, p) for slot in SLOTS for p in getattr(block, slot).phases}


def test_every_part_emits_its_phases_into_a_real_trace(model_name: str, tmp_path) -> None:
    """What the model's parts declare must be what a real trace of it shows (a new model is
    checked here with no edit); the models in the table above must also show what it pins."""
    torch.manual_seed(0)
    model = build_model(model_name, TRACE_CFG, TRACE_TASK, OWN)
    found = nested_phases(trace_one_step(model, tmp_path, model_name))
    if model_name in EXPECTED_PHASES:
        assert found == EXPECTED_PHASES[model_name]
    assert declared_phases(model) == found, model_name


def test_the_phase_table_names_registered_models() -> None:
    assert set(EXPECTED_PHASES) <= set(registries.MODELS.names())


def test_a_composite_part_emits_its_childrens_phases(tmp_path) -> None:
    """A shared dense expert beside routed experts as one FFN part (`CompositePart`): the
    trace shows both children's phases inside the `ffn` range, as the part declares."""
    moe = MoEConfig(dim=16, hidden=8, experts=4, top_k=2, router="top_k", activation="gelu")
    torch.manual_seed(0)
    model = build_classifier(
        TRACE_CFG,
        TRACE_TASK,
        make_mixer=lambda _layer: MultiHeadAttention(16, 2, 0.0),
        make_ffn=lambda _layer: CompositePart(
            {"shared": DenseFFN(16, 16, 0.0), "routed": MoEFFN(moe)}
        ),
    )
    found = nested_phases(trace_one_step(model, tmp_path, "deepseek_like"))
    assert found == {("mixer", ATTENTION)} | _DENSE_MLP | _MOE_FFN == declared_phases(model)


def test_unknown_phase_and_slot_names_are_refused() -> None:
    with pytest.raises(ValueError, match="use one of"):
        phase("routing")
    with pytest.raises(ValueError, match="use one of"):
        slot("attention")


def test_bench_profile_command_writes_a_trace(tmp_path, capsys) -> None:
    argv = ["profile", "full_attention", "lra/listops", "--out", str(tmp_path), "--run-id", "x"]
    argv += ["--cache-dir", str(tmp_path / "cache"), *FAST]
    assert main(argv) == 0
    out = capsys.readouterr().out
    traces = list((tmp_path / "x" / "traces" / "listops-full_attention").glob("*.pt.trace.json"))
    assert len(traces) == 1 and str(traces[0]) in out
    assert ATTENTION in _annotations(traces[0])


def test_bench_profile_takes_its_schedule_from_the_config(tmp_path) -> None:
    """`bench profile` resolves its schedule as `bench run` does (`--set measure.profile_*`);
    it used to read a fixed preset and ignore the overrides."""
    argv = ["profile", "full_attention", "lra/listops", "--out", str(tmp_path), "--run-id", "x"]
    argv += ["--cache-dir", str(tmp_path / "cache"), *FAST, "--set", "measure.profile_active=3"]
    assert main(argv) == 0
    (trace,) = (tmp_path / "x" / "traces" / "listops-full_attention").glob("*.pt.trace.json")
    assert sum(n.startswith("ProfilerStep#") for n in _annotations(trace)) == 3
