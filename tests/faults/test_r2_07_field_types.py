"""Review 2, item 7: a JSON-valid record with a field of the wrong type is quarantined like a
garbled line. Before, `metrics: [1, 2]`, `accuracy: "high"` or `seed: "0"` crashed `bench
report`, `bench compare` and `--resume` (an AttributeError or TypeError deep in the report), and
the run could not go on until the line was fixed by hand."""

from __future__ import annotations

import json
import logging

import pytest
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from bench.records import RecordStore, read_records

# Each edit of one record's JSON object that keeps it valid JSON but breaks a field's type.
EDITS = {
    "metrics a list": lambda r: r.__setitem__("metrics", [1, 2]),
    "accuracy text": lambda r: r["metrics"].__setitem__("accuracy", "high"),
    "seed text": lambda r: r.__setitem__("seed", "0"),
    "params_total text": lambda r: r.__setitem__("params_total", "many"),
    "config a list": lambda r: r.__setitem__("config", [1]),
    "loss_curve a number": lambda r: r["metrics"].__setitem__("loss_curve", 3),
    "accuracy a bool": lambda r: r["metrics"].__setitem__("accuracy", True),
    "duration text": lambda r: r.__setitem__("duration_s", "long"),
}


def _break_line(run_dir, edit) -> tuple[str, str]:
    """Apply `edit` to the second record of the run; return its task and the edited line."""
    path = run_dir / "records.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    EDITS[edit](record)
    lines[1] = json.dumps(record, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    return json.loads(lines[1])["task"], lines[1]


@pytest.mark.parametrize("edit", list(EDITS))
def test_wrong_field_type_is_quarantined_and_the_run_goes_on(
    tmp_path, monkeypatch, capsys, caplog, edit
) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY)) == 0
    run_dir = tmp_path / "runs" / "r"
    tasks = [r.task for r in read_records(run_dir)]
    task, broken = _break_line(run_dir, edit)
    capsys.readouterr()

    with caplog.at_level(logging.WARNING):
        assert [r.task for r in RecordStore(run_dir).read()] == [t for t in tasks if t != task]
    assert "records.jsonl:2: garbled record" in caplog.text  # skipped, naming the line

    assert main(["report", str(run_dir), "--no-plots"]) == 0
    assert main(["compare", str(run_dir), str(run_dir)]) in (0, 1)
    assert "internal error" not in capsys.readouterr().err

    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    records = read_records(run_dir)
    assert sorted(r.task for r in records) == ["first", "majority", "match"]
    assert all(r.status == "ok" for r in records)
    assert all(isinstance(r.metrics["accuracy"], float) for r in records)
    assert (run_dir / "records.quarantine.jsonl").read_text() == broken + "\n"  # nothing lost
