"""Review 2, item 12: options that `--resume` silently ignored (`--cache-dir`, `--device`,
`--out`, `--run-id`: the stored run decides them) and `--max-retries` without `--launcher ray`
(ignored by the in-process launcher). Now each is refused with what to drop; nothing runs."""

from __future__ import annotations

import pytest
from fault_helpers import TINY, record_lines, run_args, stub_measurements

from bench.cli import main


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--cache-dir", "OTHER", "--resume uses the run's stored cache directory"),
        ("--device", "cpu", "--resume runs on the run's stored device (cpu)"),
        ("--out", "OTHER", "--resume writes into RUN_DIR itself"),
        ("--run-id", "other", "--resume writes into RUN_DIR itself"),
    ],
)
def test_resume_refuses_options_it_would_ignore(
    tmp_path, capsys, monkeypatch, flag, value, message
) -> None:
    stub_measurements(monkeypatch)
    assert main([*run_args(tmp_path), *TINY, "--tasks", "majority"]) == 0
    run_dir = tmp_path / "runs" / "r"
    before = record_lines(run_dir)
    capsys.readouterr()
    value = str(tmp_path / "other") if value == "OTHER" else value
    assert main(["run", "--resume", str(run_dir), flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert f"drop {flag}" in err
    assert record_lines(run_dir) == before
    assert not (tmp_path / "other").exists()
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0  # without it: fine


def test_max_retries_needs_ray(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority", "--max-retries", "5"]
    assert main(argv) == 2
    assert "bench: error: --max-retries need --launcher ray" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "r").exists()
