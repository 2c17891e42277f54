"""Review 2, item 11: `train.steps=1000000000` was accepted with no way to bound it. Now
`train.time_budget_s` (0 = no budget) stops training cleanly once the loop's wall time reaches it:
the last step is evaluated, the best-dev weights are tested as usual, the record's config holds
the budget and `metrics.train_stopped_at_step` the step it stopped after. Once the first steps are
timed, a training estimated at over 10 minutes is announced (a warning naming the estimate)."""

from __future__ import annotations

import json
import logging

from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main


def _record(tmp_path) -> dict:
    lines = (tmp_path / "runs" / "r" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_budget_stops_an_endless_training(tmp_path, capsys, monkeypatch, caplog) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority"]
    argv += ["--set", "train.steps=1000000000", "--set", "train.time_budget_s=1.5"]
    with caplog.at_level(logging.WARNING, logger="bench.train"):
        assert main(argv) == 0
    record = _record(tmp_path)
    assert record["status"] == "ok"
    assert record["config"]["train"]["time_budget_s"] == 1.5
    metrics = record["metrics"]
    stopped = metrics["train_stopped_at_step"]
    assert 0 < stopped < 1_000_000_000
    assert metrics["train_time_s"] >= 1.5
    assert metrics["dev_curve"][-1][0] == stopped  # the last step done was evaluated
    assert 0 < metrics["best_step"] <= stopped
    estimate = [r.getMessage() for r in caplog.records if "estimated training time" in r.message]
    assert len(estimate) == 1, caplog.text
    assert "train.steps=1000000000" in estimate[0]
    assert "train.time_budget_s=1.5 stops it" in estimate[0]


def test_short_training_has_no_stop_and_no_estimate(tmp_path, monkeypatch, caplog) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority"]
    with caplog.at_level(logging.WARNING, logger="bench.train"):
        assert main(argv) == 0
    record = _record(tmp_path)
    assert record["config"]["train"]["time_budget_s"] == 0.0
    assert "train_stopped_at_step" not in record["metrics"]
    assert record["metrics"]["dev_curve"][-1][0] == 4
    assert "estimated training time" not in caplog.text


def test_negative_budget_is_refused(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority", "--set", "train.time_budget_s=-1"]
    assert main(argv) == 2
    assert "train.time_budget_s=-1.0 is out of range" in capsys.readouterr().err
