"""Fault 6: every out-of-memory is an `oom` record, in any phase, and `--resume` retries it.
Before, an OOM while measuring recorded `ok` (no FLOPs, a measurement_error) and one while
building the data (`data.max_len=1e8`) recorded `error`."""

from __future__ import annotations

import importlib

import torch
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from bench.records import read_records
from bench.runner import cell

launch = importlib.import_module("bench.runner.launch")  # where the in-process launcher loads


def _oom(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_oom_while_measuring_is_oom_and_resume_retries_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cell, "_measure", _oom)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 1
    run_dir = tmp_path / "runs" / "r"
    (record,) = read_records(run_dir)
    assert record.status == "oom" and "out of memory while measuring" in record.reason
    assert record.params_total > 0 and not record.metrics

    stub_measurements(monkeypatch)
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    assert [r.status for r in read_records(run_dir)] == ["ok"]


def test_oom_while_loading_data_is_oom(tmp_path, monkeypatch) -> None:
    def no_memory(resolved, task, variant=""):
        return MemoryError("Unable to allocate 74.5 GiB for an array with shape (100, 100000000)")

    monkeypatch.setattr(launch, "load_task_data", no_memory)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 1
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.status == "oom" and "out of memory loading the data" in record.reason
    assert "data.max_len" in record.reason


def test_cpu_allocator_failure_in_fvcore_is_not_hidden(monkeypatch) -> None:
    """An OOM inside the fvcore cross-check is the cell's OOM, not an `fvcore_error` metric."""
    from bench.measure import cell as measure_cell

    def alloc(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 800000000000 bytes."
        )

    monkeypatch.setattr(measure_cell, "fvcore_flops", alloc)
    try:
        measure_cell._fvcore_metrics(torch.nn.Linear(2, 2), (), (), 1)
    except RuntimeError as exc:
        assert cell.is_out_of_memory(exc)
    else:
        raise AssertionError("the OOM was recorded as an fvcore error")
