"""The GPU check script (bench/gpu_checks.py) on a machine without CUDA: its refusal, its
arguments, the commands it would run (each parsed by the real command it calls, in dry-run), and
the step runner's bookkeeping with a fake runner (passed, failed, timeout, out of budget)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_checks
from bench.cli import main as bench_main
from bench.gpu_checks import STEPS, Step, main, parse_args, plan_steps, run_steps


def table_script():
    """tests/benchmarks/grouped_mm_table.py as a module ('tests' is not a package)."""
    path = Path(__file__).parent / "benchmarks" / "grouped_mm_table.py"
    spec = importlib.util.spec_from_file_location("grouped_mm_table", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # its dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_without_cuda_it_refuses_clearly_and_runs_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls: list = []
    code = main(["--out", str(tmp_path / "out")], runner=lambda *a, **k: calls.append(a))
    assert code == gpu_checks.NO_CUDA == 3
    assert "no CUDA device here" in capsys.readouterr().err
    assert calls == [] and not (tmp_path / "out").exists()


def test_the_output_folder_comes_from_out_or_the_environment(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("OUT", raising=False)
    with pytest.raises(SystemExit) as exit_:
        parse_args([])
    assert exit_.value.code == 2 and "give --out DIR (or set $OUT)" in capsys.readouterr().err
    monkeypatch.setenv("OUT", str(tmp_path))
    assert parse_args([]).out == tmp_path
    assert parse_args(["--out", "elsewhere"]).out == Path("elsewhere")


@pytest.mark.parametrize(
    "argv",
    [["--only", "tests,nope"], ["--only", ","], ["--budget-s", "0"], ["--listops-steps", "0"]],
)
def test_bad_arguments_exit_2(argv, tmp_path) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--out", str(tmp_path), *argv])
    assert exit_.value.code == 2


def test_dry_run_prints_every_step_and_runs_nothing(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path / "o"), "--dry-run"], runner=None) == 0
    out = capsys.readouterr().out
    for name in STEPS:
        assert f"{name} (<= " in out
    assert "--dtype bfloat16" in out and "--dtype float32" in out
    assert "--models full_attention,uoe_paper --scale paper --device cuda" in out
    assert not (tmp_path / "o").exists()


def test_the_steps_fit_ten_minutes_and_only_selects() -> None:
    args = parse_args(["--out", "o"])
    steps = plan_steps(args, python="py")
    assert [s.name for s in steps] == list(STEPS)
    assert sum(s.timeout_s for s in steps) <= args.budget_s <= 600
    only = plan_steps(parse_args(["--out", "o", "--only", "listops,tests"]), python="py")
    assert [s.name for s in only] == ["tests", "listops"]  # in the script's order


def test_the_listops_step_is_a_valid_bench_run(capsys) -> None:
    """The ListOps command, in `bench run --dry-run` (which takes --device cuda without a GPU):
    paper scale, both models, training shortened as the arguments say."""
    args = parse_args(["--out", "o", "--listops-steps", "300", "--listops-train", "1000"])
    (listops,) = [s for s in plan_steps(args, python="py") if s.name == "listops"]
    argv = list(listops.argv)
    assert argv[:4] == ["py", "-m", "bench.cli", "run"]
    assert bench_main([*argv[3:], "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "full_attention" in out and "uoe_paper" in out
    assert "train.steps=300" in argv and "data.n_train=1000" in argv


def test_the_kernel_steps_parse_with_the_table_scripts_own_parser(monkeypatch) -> None:
    grouped_mm_table = table_script()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # its parser checks for CUDA
    for step in plan_steps(parse_args(["--out", "o"]), python="py"):
        if step.name.startswith("kernels_"):
            parsed = grouped_mm_table.parse_args(list(step.argv[3:]))
            assert parsed.device == "cuda" and parsed.grid == "goal"
            assert set(parsed.paths.split(",")) == {"auto", "torch", "triton", "mm"}
            dtype = {"kernels_bf16": "bfloat16", "kernels_fp32": "float32"}[step.name]
            assert parsed.dtype == dtype
            assert parsed.out == Path("o") / f"{step.name}.md"


def test_the_table_script_refuses_cuda_when_there_is_none(monkeypatch, capsys) -> None:
    grouped_mm_table = table_script()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        grouped_mm_table.parse_args(["--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_run_steps_records_each_outcome_and_the_budget(tmp_path) -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def runner(argv, *, stdout, timeout, **_kwargs):
        name = argv[0]
        stdout.write(f"{name} ran\n".encode())
        now[0] += {"ok": 30, "bad": 20, "slow": timeout}[name]
        if name == "slow":
            raise subprocess.TimeoutExpired(argv, timeout)
        (tmp_path / "made.md").write_text("x")
        return subprocess.CompletedProcess(argv, 0 if name == "ok" else 1)

    steps = [
        Step("a", ("ok",), 100, ("made.md", "missing.md")),
        Step("b", ("bad",), 100),
        Step("c", ("slow",), 40),
        Step("d", ("ok",), 100),
    ]
    outcomes = run_steps(steps, tmp_path, budget_s=95, runner=runner, clock=clock)
    assert [(o.name, o.status, o.returncode) for o in outcomes] == [
        ("a", "passed", 0),
        ("b", "failed", 1),
        ("c", "timeout", None),
        ("d", "skipped", None),  # 95 - 30 - 20 - 40 = 5 s left
    ]
    assert outcomes[0].files == ("made.md", "a.log") and outcomes[0].seconds == 30
    assert outcomes[2].seconds == 40  # its own limit, under what was left (45)
    assert (tmp_path / "b.log").read_text() == "bad ran\n"
    json_text, md = gpu_checks.summary(outcomes, {"gpu": "H100", "torch": "2.13"})
    assert json.loads(json_text)["steps"][2]["status"] == "timeout"
    assert "| c | timeout | 40 |" in md


def test_with_cuda_it_writes_the_summary_and_fails_on_a_failed_step(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _i=0: "Fake GPU")
    seen: list[list[str]] = []

    def runner(argv, **kwargs):
        seen.append(argv)
        assert kwargs["cwd"] == gpu_checks.ROOT
        assert kwargs["env"]["PYTHONPATH"].startswith(str(gpu_checks.ROOT))
        return subprocess.CompletedProcess(argv, 1 if "pytest" in argv else 0)

    assert main(["--out", str(tmp_path)], runner=runner) == 1
    assert len(seen) == len(STEPS)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gpu"] == "Fake GPU"
    assert [s["status"] for s in summary["steps"]] == ["failed", "passed", "passed", "passed"]
    assert (tmp_path / "summary.md").read_text().startswith("# GPU checks: Fake GPU")
