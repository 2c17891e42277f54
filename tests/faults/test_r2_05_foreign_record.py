"""Review 2, item 5: a record of another run pasted into `records.jsonl` is not this run's result.
Before, the runner and the report keyed records by cell only: a line from a run with another
run_id or another config stood as that cell's finished result, resume never reran the cell,
and the report showed the other run's figures under this run's config, silently. Now such a
line is skipped with a warning naming it, moved to the quarantine file on resume, and its cell
rerun."""

from __future__ import annotations

import json
import logging

import pytest
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from bench.records import RecordStore, read_records

# (the other run's id, its extra --set): another id, another config, or both.
OTHERS = {
    "other run_id, same config": ("x", ()),
    "same run_id, other config": ("r", ("--set", "train.steps=2")),
    "other run_id and config": ("x", ("--set", "data.n_train=32")),
}


@pytest.mark.parametrize("other", list(OTHERS))
def test_record_of_another_run_is_quarantined_and_its_cell_rerun(
    tmp_path, monkeypatch, capsys, caplog, other
) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path / "a", "r", *TINY)) == 0
    run_id, extra = OTHERS[other]
    assert main(run_args(tmp_path / "b", run_id, *TINY, *extra)) == 0
    run_dir, other_dir = tmp_path / "a" / "runs" / "r", tmp_path / "b" / "runs" / run_id
    ours = (run_dir / "records.jsonl").read_text().splitlines()
    theirs = (other_dir / "records.jsonl").read_text().splitlines()
    # This run lost its `first` cell (as if killed before it); the other run's is pasted in.
    task = "first"
    pasted = next(line for line in theirs if json.loads(line)["task"] == task)
    kept = [line for line in ours if json.loads(line)["task"] != task]
    (run_dir / "records.jsonl").write_text("\n".join([*kept, pasted]) + "\n")
    capsys.readouterr()

    with caplog.at_level(logging.WARNING):
        assert task not in [r.task for r in RecordStore(run_dir).read()]
    assert "records.jsonl:3: record of another run" in caplog.text
    assert main(["report", str(run_dir), "--no-plots"]) == 0  # it reads the same records

    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    records = {r.task: r for r in read_records(run_dir)}
    assert sorted(records) == ["first", "majority", "match"]
    assert all(r.run_id == "r" and r.status == "ok" for r in records.values())
    expected = json.loads(kept[0])["config"]
    assert all(r.config == expected for r in records.values())  # every cell at this config
    assert (run_dir / "records.quarantine.jsonl").read_text() == pasted + "\n"  # nothing lost
