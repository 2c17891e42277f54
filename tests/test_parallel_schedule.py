"""The parallel schedule (`bench.runner.parallel`): cells trained side by side on two workers give
the very accuracy, curves, predictions and FLOPs they give one after another; each record says
how it was scheduled; a run interrupted between training and timing resumes from the staging
dir without training again; a staged file for another config is discarded."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from bench.cli import main
from bench.records import read_records
from bench.run_plan import RunPlan
from bench.runner import InProcessLauncher, execute, resolve, start
from bench.runner import parallel as parallel_module
from bench.runner.parallel import auto_workers, staged_path

MODELS = ("full_attention", "switch", "uoe")
SMALL = (
    "data.n_train=96",
    "data.n_dev=32",
    "data.n_test=64",
    "train.steps=12",
    "train.eval_every=4",
)
# Deterministic at a fixed seed and thread count: equal under either schedule, to the bit.
EXACT = ("accuracy", "dev_accuracy", "best_step", "train_loss_final", "loss_curve", "dev_curve")


def _resolved(tmp_path, *extra: str):
    """The smoke plan of MODELS on two tasks, small, one thread; `extra` --set's."""
    tasks, cache = ("majority", "first"), str(tmp_path / "cache")
    plan = RunPlan("smoke", "tiny", MODELS, tasks, (0,), (*SMALL, *extra), cache_dir=cache)
    return resolve(dataclasses.replace(plan, threads=1))


def _run(resolved, run_dir, workers: int):
    """Run the plan as `bench run --threads 1 --workers N` does (it sets this process's threads:
    the serial schedule trains here)."""
    start(resolved, run_dir, ["test"], InProcessLauncher(workers).describe())
    return _execute(resolved, run_dir, workers)


def _execute(resolved, run_dir, workers: int):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute(resolved, run_dir, InProcessLauncher(workers))
    finally:
        torch.set_num_threads(threads)


def _figures(records) -> dict:
    out = {}
    for r in records:
        kept = {k: r.metrics[k] for k in EXACT}
        kept["train_loss_curve"] = r.metrics["train_loss_curve"]
        kept["flops"] = {k: v for k, v in r.metrics.items() if k.startswith("flops_")}
        out[(r.task, r.model)] = (r.status, r.params_total, r.test_predictions, kept)
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("serial")
    return _run(_resolved(tmp_path), tmp_path / "run", 1)


def test_parallel_training_gives_the_serial_figures(serial, tmp_path) -> None:
    parallel = _run(_resolved(tmp_path), tmp_path / "run", 2)
    assert len(parallel) == len(serial) == 6
    assert {r.status for r in parallel} == {"ok"}
    mine, theirs = _figures(parallel), _figures(serial)
    for cell in theirs:
        assert mine[cell] == theirs[cell], cell
    for r in serial:
        assert r.placement["schedule"] == {
            "train": "serial",
            "workers": 1,
            "timing": "after each cell's training",
        }
    for r in parallel:
        assert r.placement["schedule"] == {
            "train": "parallel",
            "workers": 2,
            "timing": "serial, after all training",
        }
    assert not any((tmp_path / "run" / "staging").iterdir())  # every staged cell was timed
    # the records on disk are the ones returned, each cell once
    assert sorted((r.task, r.model) for r in read_records(tmp_path / "run")) == sorted(mine)


class _Stop(Exception):
    """Stands for a kill between the training and the timing."""


def test_a_run_stopped_before_its_timing_resumes_without_retraining(
    serial, tmp_path, monkeypatch
) -> None:
    resolved, run_dir = _resolved(tmp_path), tmp_path / "run"
    measure = parallel_module.measure_cell
    timed = []

    def stop_after_two(*args, **kwargs):
        if len(timed) == 2:
            raise _Stop
        timed.append(args[1])
        return measure(*args, **kwargs)

    monkeypatch.setattr(parallel_module, "measure_cell", stop_after_two)
    with pytest.raises(_Stop):
        _run(resolved, run_dir, 2)
    assert len(read_records(run_dir)) == 2  # the two timed cells' records are on disk
    cells = resolved.plan.cells()
    staged = [c for c in cells if staged_path(run_dir, c).exists()]
    assert len(staged) == 4 and not set(staged) & set(timed)

    def no_training(*args, **kwargs):
        raise AssertionError("a staged cell was trained again")

    monkeypatch.setattr(parallel_module, "measure_cell", measure)
    monkeypatch.setattr(parallel_module, "train_cell", no_training)
    resumed = _execute(resolved, run_dir, 2)
    mine, theirs = _figures(resumed), _figures(serial)
    assert mine == theirs
    assert len(read_records(run_dir)) == 6
    assert not any(staged_path(run_dir, c).exists() for c in cells)


def test_a_staged_cell_of_another_config_is_retrained(tmp_path) -> None:
    resolved, run_dir = _resolved(tmp_path), tmp_path / "run"
    cell = resolved.plan.cells()[0]
    other = _resolved(tmp_path, "train.lr=0.01")
    data = parallel_module.load_task_data(other, cell.task, cell.variant)
    trained = parallel_module.train_cell(
        other, cell, data, parallel_module.record_identity(other, cell, "x")
    )
    run_dir.mkdir()
    parallel_module.save_staged(run_dir, cell, trained)
    assert parallel_module._valid_staged(other, run_dir, cell)  # its own run would time it
    assert not parallel_module._valid_staged(resolved, run_dir, cell)  # this run retrains it
    assert not staged_path(run_dir, cell).exists()


def _plan_of(kind: str, causal: bool = False) -> SimpleNamespace:
    """What `auto_workers` reads of a resolved plan: its suite's kind and its tasks."""
    return SimpleNamespace(
        suite=SimpleNamespace(kind=kind), tasks={"t": SimpleNamespace(causal=causal)}
    )


def test_auto_workers() -> None:
    import os

    cores = os.cpu_count() or 1
    accuracy = _plan_of("accuracy")
    assert auto_workers(1, "cpu", accuracy) == cores
    assert auto_workers(cores, "cpu", accuracy) == 1
    assert auto_workers(1, "cuda", accuracy) == 1
    assert auto_workers(1, "cpu", _plan_of("efficiency")) == 1
    assert auto_workers(1, "cpu", _plan_of("accuracy", causal=True)) == 1  # LM cells
    assert auto_workers(None, "cpu", accuracy) == 1


def test_workers_are_refused_where_cells_run_one_at_a_time(tmp_path, capsys) -> None:
    """An explicit --workers 2 on the LM suite is refused, not quietly run serially."""
    args = ["run", "--suite", "lm", "--scale", "tiny", "--models", "full_attention"]
    assert main([*args, "--tasks", "stdlib", "--out", str(tmp_path), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert (
        "--workers 2: language-modelling cells train, probe and are measured one at a time" in err
    )
