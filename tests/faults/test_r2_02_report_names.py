"""Fault review 2, item 2: `bench report RUN --out DIR` named its table files after the records'
`suite` and `scale` fields without sanitising them (plot stems were): a record with
`suite: "x/../../../victim/S4a_evil"` wrote `accuracy_x/../../../victim/S4a_evil_tiny.md`,
i.e. a `.md` file outside DIR (creating the folders on the way). Now every name taken from data
is made one plain file name, the way plot stems are, and everything lands directly in DIR."""

from __future__ import annotations

import json

import pytest
from fault_helpers import TINY, run_args, stub_measurements, tree_state

from bench.cli import main

EVIL_SUITE = "x/../../../victim/S4a_evil"


@pytest.mark.parametrize("field, value", [("suite", EVIL_SUITE), ("scale", "../../../victim/s")])
def test_report_writes_only_into_out_whatever_the_records_say(
    tmp_path, monkeypatch, capsys, field, value
) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 0
    run_dir = tmp_path / "runs" / "r"
    path = run_dir / "records.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record[field] = value
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "paper.md").write_text("my paper\n")
    out = tmp_path / "reports" / "a" / "out"
    before = tree_state(tmp_path, run_dir, tmp_path / "cache")

    for fmt in ("md", "latex"):
        assert main(["report", str(run_dir), "--out", str(out), "--format", fmt]) == 0, (
            capsys.readouterr().err
        )

    after = tree_state(tmp_path, run_dir, tmp_path / "cache")
    outside = {k: v for k, v in after.items() if not k.startswith("reports/a/out/")}
    assert outside == {k: v for k, v in before.items()} | {
        "reports": outside["reports"],
        "reports/a": outside["reports/a"],
        "reports/a/out": outside["reports/a/out"],
    }
    written = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert written, "the report wrote nothing"
    assert all(p.parent.name == "" and (out / p).is_file() for p in written), written
    assert any(p.name.startswith("accuracy_") and p.suffix == ".md" for p in written), written
    assert any(p.suffix == ".tex" for p in written), written
