"""Fault 7: a damaged records.jsonl loses nothing. Before, a file cut by exactly its final
newline lost a complete record on resume ("removing 2767 bytes of an incomplete record"), and
one garbled line in the middle blocked both `--resume` and `bench report`."""

from __future__ import annotations

import logging

from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from bench.records import Record, RecordStore, read_records


def _record(seed: int) -> Record:
    return Record(
        run_id="r", suite="smoke", task="majority", model="m", scale="tiny", seed=seed,
        status="ok", metrics={"accuracy": 0.5},
    )  # fmt: skip


def test_record_missing_only_its_final_newline_is_kept(tmp_path) -> None:
    store = RecordStore(tmp_path)
    for seed in (0, 1):
        store.append(_record(seed))
    store.path.write_bytes(store.path.read_bytes()[:-1])  # cut by exactly the newline
    assert [r.seed for r in store.read()] == [0, 1]
    store.repair()
    store.append(_record(2))
    assert [r.seed for r in store.read()] == [0, 1, 2]


def test_garbled_middle_line_is_quarantined_and_named(tmp_path, caplog) -> None:
    store = RecordStore(tmp_path)
    for seed in (0, 1, 2):
        store.append(_record(seed))
    lines = store.path.read_bytes().split(b"\n")
    lines[1] = b'{"run_id": "r", "suite": "sm\x00\xff garbage'
    store.path.write_bytes(b"\n".join(lines))
    with caplog.at_level(logging.WARNING):
        assert [r.seed for r in store.read()] == [0, 2]  # readers skip it, naming the line
    assert "records.jsonl:2: garbled record" in caplog.text
    with caplog.at_level(logging.WARNING):
        quarantine = store.repair()
    assert quarantine == tmp_path / "records.quarantine.jsonl"
    assert quarantine.read_bytes() == lines[1] + b"\n"  # nothing deleted
    assert str(quarantine) in caplog.text
    assert [r.seed for r in store.read()] == [0, 2]
    assert store.path.read_bytes().count(b"\n") == 2


def test_report_and_resume_go_on_past_a_garbled_line(tmp_path, monkeypatch, capsys) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY)) == 0
    run_dir = tmp_path / "runs" / "r"
    path = run_dir / "records.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = garbled = lines[1][:40]
    path.write_text("\n".join(lines) + "\n")
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    records = read_records(run_dir)
    assert sorted(r.task for r in records) == ["first", "majority", "match"]
    assert all(r.status == "ok" for r in records)
    assert (run_dir / "records.quarantine.jsonl").read_text() == garbled + "\n"
