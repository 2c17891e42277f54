"""What each layer phase costs of a profiled step (bench/measure/phases.py), and `bench profile`'s
flags (bench/profile_command.py): backward nodes land in the phase of the forward op that made
them, the summary's shares add up to at most 100 % with 'other' the rest, and the command's
threads, steps, side-by-side models, --from-run and --trained."""

from __future__ import annotations

import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile, schedule

from bench.cli import main
from bench.manifest import read_manifest
from bench.measure.cell import TimedModel
from bench.measure.phases import backward_nodes, summarize
from models.config import ModelConfig, ModelTask
from models.layers.ranges import EXPERT_GEMM, ROUTER, phase
from models.registry import build_model
from suites.config import TrainConfig
from suites.data import Split

TRACE_CFG = ModelConfig(dim=16, depth=1, heads=2, ffn_dim=32)
TRACE_TASK = ModelTask(num_classes=3, vocab_size=11, num_inputs=1, max_len=16)


def profiled_events(step, steps: int = 2) -> list:
    """The profiler events of `steps` recorded calls of `step` (after one warm-up)."""
    captured: list = []
    with profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
        on_trace_ready=lambda prof: captured.extend(prof.events()),
    ) as prof:
        for _ in range(1 + steps):
            step()
            prof.step()
    return captured


def test_each_backward_node_lands_in_its_forward_ops_phase() -> None:
    """Three linear layers, the first outside every phase, the second in `router`, the third
    in `expert_gemm`: each one's AddmmBackward0 belongs where its forward ran."""
    torch.manual_seed(0)
    layers = [torch.nn.Linear(8, 8) for _ in range(3)]
    x = torch.randn(4, 8)

    def step() -> None:
        h = layers[0](x)
        with phase(ROUTER):
            h = layers[1](h).relu()
        with phase(EXPERT_GEMM):
            h = layers[2](h)
        h.square().sum().backward()

    nodes = backward_nodes(profiled_events(step))
    addmm = [n.phase for n in nodes if n.name == "AddmmBackward0"]
    # the engine runs the backward in reverse: expert_gemm's layer, router's, the outside one
    assert addmm == [EXPERT_GEMM, ROUTER, None] * 2
    assert {n.phase for n in nodes if n.name == "ReluBackward0"} == {ROUTER}
    assert {n.phase for n in nodes if n.name in ("PowBackward0", "SumBackward0")} == {None}
    summary = summarize(profiled_events(step))
    assert summary.steps == 2
    shares = {p.phase: p for p in summary.phases}
    assert shares[EXPERT_GEMM].backward_s > 0 and shares[ROUTER].backward_s > 0
    assert shares[ROUTER].forward_s > 0 and shares["attention"].total_s == 0


def test_a_tiny_moes_expert_gemm_backward_lands_in_expert_gemm() -> None:
    torch.manual_seed(0)
    model = build_model("switch", TRACE_CFG, TRACE_TASK, {})
    tokens = torch.randint(1, 11, (4, 16), generator=torch.Generator().manual_seed(0))
    batch = Split((tokens,), (torch.tensor([16, 9, 5, 12]),), torch.tensor([0, 1, 2, 0]))
    bench = TimedModel(model, batch, train=TrainConfig(lr=1e-3), device=torch.device("cpu"))
    events = profiled_events(bench.train_step)
    nodes = backward_nodes(events)
    gemm = [n for n in nodes if "GroupedMm" in n.name]  # the grouped GEMM's own backward
    depth = TRACE_CFG.depth
    assert len(gemm) == 2 * 2 * depth  # up and down per block, two steps
    assert {n.phase for n in gemm} == {EXPERT_GEMM}
    attention = [n for n in nodes if "ScaledDotProduct" in n.name]
    assert attention and {n.phase for n in attention} == {"attention"}
    assert {n.phase for n in nodes if n.name == "LogSoftmaxBackward0"} == {None}  # the loss
    assert {n.phase for n in nodes if n.name.startswith("Embedding")} == {None}
    summary = summarize(events)
    rows = summary.rows()
    phases = [r for r in rows if r["phase"] != "other"]
    assert sum(p.total_s for p in summary.phases) <= summary.step_s
    assert sum(r["total %"] for r in phases) <= 100.0 + 0.05 * len(phases)  # rounding
    other = next(r for r in rows if r["phase"] == "other")
    assert other["total %"] >= 0
    exact = 100 - sum(summary.percent(p.total_s) for p in summary.phases)
    assert summary.percent(summary.other_s) == pytest.approx(exact)
    assert [r["phase"] for r in rows][:6] == [
        "router",
        "dispatch",
        "expert_gemm",
        "combine",
        "attention",
        "mlp",
    ]
    expert = next(p for p in summary.phases if p.phase == EXPERT_GEMM)
    assert expert.backward_s > 0  # the backward is attributed, no longer outside every phase


def test_summarize_without_step_ranges_spans_the_events() -> None:
    x = torch.randn(4, 4, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with phase(ROUTER):
            y = (x * 2).sum()
        y.backward()
    summary = summarize(prof.events())
    assert summary.steps == 0 and summary.step_s > 0
    assert sum(p.total_s for p in summary.phases) <= summary.step_s
    assert summarize([]).step_s == 0


def _profile(tmp_path, *extra: str, run_id: str = "p") -> int:
    argv = ["profile", *extra, "--out", str(tmp_path / "profiles"), "--run-id", run_id]
    return main(argv)


def test_bench_profile_threads_steps_and_two_models_side_by_side(tmp_path, capsys) -> None:
    threads = torch.get_num_threads()
    try:
        code = _profile(
            tmp_path,
            "switch,full_attention",
            "smoke/first",
            "--threads",
            "1",
            "--steps",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    out = capsys.readouterr().out
    assert "side by side, % of each model's step" in out
    assert "| phase" in out and "switch" in out and "full_attention" in out
    folder = tmp_path / "profiles" / "p"
    manifest = json.loads((folder / "profile.json").read_text())
    assert manifest["threads"] == 1 and manifest["schedule"]["active"] == 2
    assert manifest["models"] == ["switch", "full_attention"]
    assert set(manifest["load_average"]) == {"before", "after"}
    assert "git_sha" in manifest and manifest["config"]["train"]["batch_size"] > 0
    assert manifest["kernel_tuning"]["mode"] == "autotune"
    assert manifest["phases"]["switch"]["steps"] == 2
    assert manifest["phases"]["switch"]["phases"]["expert_gemm"]["backward_s"] > 0
    for name in ("switch", "full_attention"):
        phases = folder / "traces" / f"first-{name}" / f"{name}.phases.txt"
        assert phases.read_text().startswith("phases: 2 step(s)")


def test_bench_profile_from_a_run_trains_the_cell_as_configured(tmp_path, capsys) -> None:
    run = ["run", "--suite", "smoke", "--models", "switch", "--tasks", "first", "--no-progress"]
    run += ["--set", "train.steps=3", "--set", "train.eval_every=3", "--set", "model.dim=16"]
    run += ["--out", str(tmp_path / "runs"), "--run-id", "r", "--kernels", "rule"]
    run += ["--cache-dir", str(tmp_path / "cache")]
    assert main(run) == 0
    run_dir = tmp_path / "runs" / "r"
    code = _profile(
        tmp_path, "switch", "smoke/first", "--from-run", str(run_dir), "--trained", "--steps", "1"
    )
    assert code == 0
    manifest = json.loads((tmp_path / "profiles" / "p" / "profile.json").read_text())
    stored = read_manifest(run_dir)
    assert manifest["config"] == json.loads(json.dumps(stored.config("first"), default=str))
    assert manifest["config"]["model"]["dim"] == 16
    assert manifest["plan"]["overrides"] == list(stored.plan.overrides)
    assert manifest["trained"] is True and manifest["from_run"] == str(run_dir)
    assert manifest["kernel_tuning"]["mode"] == "rule"  # as the run picked its kernels
    capsys.readouterr()
    # what the run decides is refused, not ignored; a model the run lacks is named
    assert (
        _profile(
            tmp_path,
            "switch",
            "smoke/first",
            "--from-run",
            str(run_dir),
            "--set",
            "model.dim=8",
            run_id="q",
        )
        == 2
    )
    assert "--from-run takes the cell's config from the run; drop --set" in capsys.readouterr().err
    assert _profile(tmp_path, "mixtral", "smoke/first", "--from-run", str(run_dir), run_id="q") == 2
    assert "has no cells of mixtral" in capsys.readouterr().err
    assert _profile(tmp_path, "switch", "smoke/majority", "--from-run", str(run_dir)) == 2
    assert "not smoke/majority" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "0"], "--steps 0: profile at least 1 step"),
        (["--threads", "0"], "--threads 0: use 1 or more"),
    ],
)
def test_bench_profile_refuses_bad_counts(tmp_path, capsys, extra, message) -> None:
    assert _profile(tmp_path, "switch", "smoke/first", *extra) == 2
    assert message in capsys.readouterr().err


def test_bench_profile_refuses_a_model_named_twice(tmp_path, capsys) -> None:
    assert _profile(tmp_path, "switch,switch", "smoke/first") == 2
    assert "switch is given twice" in capsys.readouterr().err
