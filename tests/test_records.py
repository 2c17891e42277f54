from __future__ import annotations

import json

import pytest

from bench.records import SCHEMA_VERSION, Record, RecordStore


def _record(seed: int = 0, **kw) -> Record:
    base = dict(
        run_id="r",
        suite="lra",
        task="listops",
        model="m",
        scale="tiny",
        seed=seed,
        status="ok",
        metrics={"accuracy": 0.5},
    )
    return Record(**{**base, **kw})


def test_append_and_read_round_trip(tmp_path) -> None:
    store = RecordStore(tmp_path)
    first, second = _record(0), _record(1, status="skipped", reason="no data", metrics={})
    store.append(first)
    store.append(second)
    assert store.read() == [first, second]
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["schema_version"] == SCHEMA_VERSION == 4


def test_latest_record_of_a_cell_wins(tmp_path) -> None:
    store = RecordStore(tmp_path)
    store.append(_record(0, status="error", reason="boom", metrics={}))
    store.append(_record(0))
    assert [r.status for r in store.latest().values()] == ["ok"]


def test_incomplete_last_line_is_ignored_and_repaired(tmp_path) -> None:
    store = RecordStore(tmp_path)
    store.append(_record(0))
    with open(store.path, "a") as f:
        f.write('{"run_id": "r", "sui')  # a kill during a write
    assert len(store.read()) == 1
    store.repair()
    store.append(_record(1))
    assert [r.seed for r in store.read()] == [0, 1]


def test_malformed_complete_line_is_skipped_with_its_line_named(tmp_path, caplog) -> None:
    store = RecordStore(tmp_path)
    store.path.write_text("not json\n")
    assert store.read() == []
    assert "records.jsonl:1: garbled record" in caplog.text


def test_a_failed_record_needs_a_reason_and_a_known_status() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        _record(status="error")
    with pytest.raises(ValueError, match="status must be one of"):
        _record(status="done")


def test_nan_metrics_are_refused() -> None:
    with pytest.raises(ValueError):
        _record(metrics={"accuracy": float("nan")}).to_json()
