"""Fault 2: out-of-range config values are refused when the plan is resolved, naming the field
and its valid range (before: `train.batch_size=-3` looped forever at 100 % CPU; 0 for
batch_size, eval_every or n_test failed deep in training with `range() arg 3 must not be
zero` or a ZeroDivisionError)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fault_helpers import TINY

from bench import runner

BAD = [
    ("train.batch_size=-3", "train.batch_size", ">= 1"),
    ("train.batch_size=0", "train.batch_size", ">= 1"),
    ("train.steps=0", "train.steps", ">= 1"),
    ("train.eval_every=0", "train.eval_every", ">= 1"),
    ("data.n_test=0", "data.n_test", ">= 1"),
    ("data.n_train=-1", "data.n_train", ">= 1"),
    ("data.max_len=0", "data.max_len", ">= 1"),
    ("train.warmup_steps=-1", "train.warmup_steps", ">= 0"),
    ("train.lr=nan", "train.lr", "finite number > 0"),
    ("train.lr=-0.1", "train.lr", "finite number > 0"),
    ("model.dropout=1.5", "model.dropout", "[0, 1]"),
    ("model.attn_dropout=-0.1", "model.attn_dropout", "[0, 1]"),
    ("model.heads=3", "model.dim=32 must be divisible by model.heads=3", ""),
    ("model.top_k=9", "model.top_k=9 must be in [1, model.experts=4]", ""),
]


def _plan(*overrides: str) -> runner.RunPlan:
    return runner.RunPlan(
        suite="smoke",
        scale="tiny",
        models=("full_attention",),
        tasks=("majority",),
        seeds=(0,),
        overrides=overrides,
    )


@pytest.mark.parametrize(("override", "field", "valid"), BAD)
def test_out_of_range_value_is_refused_at_resolve_time(override, field, valid) -> None:
    with pytest.raises(ValueError) as err:
        runner.resolve(_plan(override))
    message = str(err.value)
    assert field in message and valid in message, message


def test_valid_edges_are_accepted() -> None:
    resolved = runner.resolve(_plan("model.dropout=1.0", "train.warmup_steps=0", "data.seed=0"))
    assert resolved.configs["majority"].model.dropout == 1.0


def test_negative_batch_size_exits_2_at_once_instead_of_hanging(tmp_path) -> None:
    argv = ["run", *TINY, "--set", "train.batch_size=-3", "--out", str(tmp_path / "runs")]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--run-id", "r"]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, timeout=90
        )
    except subprocess.TimeoutExpired:
        pytest.fail("bench run --set train.batch_size=-3 still running after 90 s (the hang)")
    assert done.returncode == 2, done.stderr
    assert "train.batch_size=-3 is out of range: it must be an integer >= 1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "r").exists(), "no run directory for a refused plan"
