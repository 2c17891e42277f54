"""What a run records of its numerics: the dtype choice, the torch.backends switches, CUDA
memory per phase, and `bench run --dry-run` (which resolves `--scale paper --device cuda` on a
machine without a GPU)."""

from __future__ import annotations

import pytest
import torch

from bench.cli import main
from bench.manifest import read_manifest
from bench.measure import numerics as numerics_module
from bench.measure.numerics import cuda_phase, numerics
from bench.records import read_records


def test_numerics_reads_the_switches_in_force() -> None:
    before = (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision())
    try:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
        now = numerics()
        assert now["cudnn_benchmark"] is True and now["float32_matmul_precision"] == "high"
        torch.backends.cudnn.benchmark = False
        torch.set_float32_matmul_precision("highest")
        now = numerics()
        assert now["cudnn_benchmark"] is False and now["float32_matmul_precision"] == "highest"
    finally:
        torch.backends.cudnn.benchmark, precision = before
        torch.set_float32_matmul_precision(precision)
    assert now["train_dtype"] == "float32" and now["autocast"] == "none"
    assert {"sdp_flash", "sdp_math", "cuda_matmul_allow_tf32", "cudnn_allow_tf32"} <= set(now)


def test_cuda_phase_records_peaks_on_cuda_and_nothing_elsewhere(monkeypatch) -> None:
    metrics: dict = {}
    with cuda_phase(torch.device("cpu"), "training_loop", metrics):
        pass
    assert metrics == {}
    calls = []
    fake = numerics_module.torch.cuda
    monkeypatch.setattr(fake, "synchronize", lambda device: calls.append("sync"))
    monkeypatch.setattr(fake, "reset_peak_memory_stats", lambda device: calls.append("reset"))
    monkeypatch.setattr(fake, "max_memory_allocated", lambda device: 123)
    monkeypatch.setattr(fake, "max_memory_reserved", lambda device: 456)
    with cuda_phase(torch.device("cuda"), "training_loop", metrics):
        calls.append("work")
    assert calls == ["sync", "reset", "work", "sync"]  # reset before, read after the block
    assert metrics == {
        "memory_peak_training_loop_cuda_bytes": 123,
        "memory_peak_training_loop_cuda_reserved_bytes": 456,
    }


def test_dry_run_resolves_paper_scale_on_cuda_without_a_gpu(tmp_path, capsys) -> None:
    argv = ["run", "--suite", "lra", "--scale", "paper", "--device", "cuda", "--dry-run"]
    argv += ["--models", "full_attention,uoe_paper", "--tasks", "listops,pathfinder"]
    argv += ["--out", str(tmp_path)]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "4 cells" in shown and "device cuda" in shown
    listops, pathfinder = shown.split("\npathfinder:\n")
    assert "train.steps=15000 " in listops
    assert "data.n_train=160000 " in pathfinder
    assert "train_dtype=float32" in shown
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_records_and_manifest_state_the_numerics(tmp_path) -> None:
    argv = ["run", "--suite", "smoke", "--models", "full_attention", "--tasks", "first"]
    argv += ["--set", "train.steps=3", "--out", str(tmp_path), "--run-id", "r", "--no-progress"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    (record,) = read_records(tmp_path / "r")
    assert record.metrics["numerics"] == read_manifest(tmp_path / "r").numerics
    assert record.metrics["numerics"]["train_dtype"] == "float32"
    assert not any("_cuda_" in k for k in record.metrics)  # a CPU run has no CUDA phases
    assert record.metrics["flops_fwd_per_example_calflops"] > 0
    assert "flops_fwd_per_example_linear_only" not in record.metrics  # older records only


@pytest.mark.gpu
def test_cuda_phases_are_recorded_on_a_gpu(tmp_path) -> None:
    argv = ["run", "--suite", "smoke", "--models", "full_attention", "--tasks", "first"]
    argv += ["--set", "train.steps=3", "--out", str(tmp_path), "--run-id", "r", "--no-progress"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--device", "cuda"]
    assert main(argv) == 0
    (record,) = read_records(tmp_path / "r")
    assert record.metrics["memory_peak_training_loop_cuda_bytes"] > 0
    assert record.metrics["memory_peak_training_loop_cuda_reserved_bytes"] > 0
    assert record.metrics["memory_peak_train_bytes"] > 0  # the measured training step
