"""Bad input and bugs are told apart: bad input (`models.errors.InputError`) is one line naming
the fix and exit 2; any other exception is a bug, printed with its traceback and a line saying
so, exit 1. Before, every KeyError or ValueError was reported as bad input, so a KeyError
raised inside a model's forward read like a mistyped name and showed no traceback."""

from __future__ import annotations

import logging

import pytest

from bench.cli import main
from bench.records import read_records
from models.layers.attention import MultiHeadAttention

QUICK = [
    *("--set", "train.steps=2", "--set", "train.eval_every=2", "--set", "data.n_train=32"),
    *("--set", "data.n_dev=8", "--set", "data.n_test=8", "--set", "measure.min_count=1"),
    *("--set", "measure.warmup=0", "--set", "measure.min_time_s=0"),
]


def _planted(self, x, mask):
    raise KeyError("planted inside the forward")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--suite", "smoke", "--models", "mixtrl"], "Did you mean: mixtral?"),
        (["run", "--suite", "smoke", "--set", "train.stepz=3"], "train fields:"),
        (["run", "--suite", "smoke", "--set", "model.dim=-1"], "--set model.dim=VALUE"),
        (["report", "no/such/run"], "is it a `bench run` directory?"),
        (["profile", "full_attention", "smoke/majorty"], "Did you mean: smoke/majority"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix_exit_2(argv, message, tmp_path, capsys) -> None:
    assert main([*argv, *(["--out", str(tmp_path)] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bug_inside_a_models_forward_shows_its_traceback_exit_1(
    tmp_path, capsys, monkeypatch
) -> None:
    """`bench profile` runs a forward outside any cell: the planted KeyError is a bug."""
    monkeypatch.setattr(MultiHeadAttention, "forward", _planted)
    argv = ["profile", "full_attention", "smoke/majority", "--out", str(tmp_path)]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), *QUICK]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "KeyError: 'planted inside the forward'" in err
    assert "in _planted" in err, "the traceback reaches the frame that raised"
    assert "bench: internal error: the traceback above is a bug" in err
    assert "bench: error:" not in err, "not reported as bad input"


def test_a_bug_outside_the_cells_of_a_run_shows_its_traceback_exit_1(
    tmp_path, capsys, monkeypatch
) -> None:
    from bench.runner import manifest

    def broken(resolved):
        raise KeyError("planted in the manifest writer")

    monkeypatch.setattr(manifest, "kernels", broken)
    argv = ["run", "--suite", "smoke", "--models", "full_attention", "--tasks", "first"]
    argv += ["--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main([*argv, *QUICK]) == 1
    err = capsys.readouterr().err
    assert "KeyError: 'planted in the manifest writer'" in err and "Traceback" in err
    assert "internal error" in err


def test_a_bug_inside_a_cell_is_its_error_record_with_the_traceback_logged(
    tmp_path, capsys, caplog, monkeypatch
) -> None:
    """Inside `bench run` a cell's exception is recorded (the run goes on and exits 1), and its
    traceback is logged, never swallowed."""
    monkeypatch.setattr(MultiHeadAttention, "forward", _planted)
    argv = ["run", "--suite", "smoke", "--models", "full_attention", "--tasks", "first"]
    argv += ["--out", str(tmp_path), "--run-id", "r", "--cache-dir", str(tmp_path / "cache")]
    with caplog.at_level(logging.ERROR):
        assert main([*argv, "--no-progress", *QUICK]) == 1
    (record,) = read_records(tmp_path / "r")
    assert record.status == "error"
    assert record.reason == "KeyError: 'planted inside the forward'"
    assert "Traceback (most recent call last)" in caplog.text and "_planted" in caplog.text
