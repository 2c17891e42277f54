"""Fault review 2, item 3: a symlinked `records.jsonl`, `records.quarantine.jsonl` or `traces/`
in a run folder was written through to its target by `bench run --resume` (the record of a rerun
cell appended to the target, a garbled line moved into it, a profiler trace written into the
linked folder). Now a run folder holding a symbolic link is refused before anything is written,
naming the link, and the writers themselves never follow one."""

from __future__ import annotations

import json

import pytest
from fault_helpers import TINY, run_args, stub_measurements, tree_state

from bench.cli import main
from bench.records import Record, RecordStore
from models.errors import InputError


def _resume_is_refused(run_dir, entry, capsys) -> None:
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / entry} is a symbolic link" in err, err
    assert err.count("\n") == 1, err


def test_symlinked_records_file(tmp_path, monkeypatch, capsys) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority,first")) == 0
    run_dir = tmp_path / "runs" / "r"
    victim = tmp_path / "victim" / "records.jsonl"  # e.g. another run's records
    victim.parent.mkdir()
    lines = (run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    victim.write_text(lines[0])  # one cell to rerun: the resume appends its record
    (run_dir / "records.jsonl").unlink()
    (run_dir / "records.jsonl").symlink_to(victim)
    before = tree_state(tmp_path, run_dir, tmp_path / "cache")

    _resume_is_refused(run_dir, "records.jsonl", capsys)

    assert tree_state(tmp_path, run_dir, tmp_path / "cache") == before


def test_symlinked_quarantine_file(tmp_path, monkeypatch, capsys) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 0
    run_dir = tmp_path / "runs" / "r"
    with open(run_dir / "records.jsonl", "a") as f:
        f.write('{"garbled\n')  # the resume's repair moves it to the quarantine file
    victim = tmp_path / "victim" / "log.txt"
    victim.parent.mkdir()
    victim.write_text("keep me\n")
    (run_dir / "records.quarantine.jsonl").symlink_to(victim)
    before = tree_state(tmp_path, run_dir, tmp_path / "cache")

    _resume_is_refused(run_dir, "records.quarantine.jsonl", capsys)

    assert tree_state(tmp_path, run_dir, tmp_path / "cache") == before


def test_symlinked_traces_folder(tmp_path, capsys) -> None:
    argv = run_args(tmp_path, "r", *TINY, "--tasks", "majority", "--seeds", "0,1", "--profile")
    assert main(argv) == 0
    run_dir = tmp_path / "runs" / "r"
    lines = (run_dir / "records.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "records.jsonl").write_text(lines[0])  # seed 1 reruns, with a trace
    victim = tmp_path / "victim" / "home"
    victim.mkdir(parents=True)
    (victim / "notes.txt").write_text("keep me\n")
    (run_dir / "traces").rename(tmp_path / "old-traces")
    (run_dir / "traces").symlink_to(victim, target_is_directory=True)
    before = tree_state(tmp_path, run_dir, tmp_path / "cache")

    _resume_is_refused(run_dir, "traces", capsys)

    assert tree_state(tmp_path, run_dir, tmp_path / "cache") == before


def _record(seed: int) -> Record:
    return Record(
        run_id="r", suite="smoke", task="majority", model="m", scale="tiny", seed=seed,
        status="ok", metrics={"accuracy": 0.5},
    )  # fmt: skip


@pytest.mark.parametrize("name", ["records.jsonl", "records.quarantine.jsonl"])
def test_the_record_store_never_writes_through_a_link(tmp_path, name) -> None:
    """Without the folder check (a link made after it): the store's own opens refuse links."""
    run_dir = tmp_path / "run"
    store = RecordStore(run_dir)
    store.append(_record(0))
    store.path.write_bytes(store.path.read_bytes() + b'{"garbled\n')
    victim = tmp_path / "victim.jsonl"
    victim.write_text(json.dumps({"mine": 1}) + "\n")
    if name == "records.jsonl":
        data = store.path.read_bytes()
        victim.write_bytes(data)
        store.path.unlink()
        store.path.symlink_to(victim)
    else:
        (run_dir / name).symlink_to(victim)
    before = tree_state(tmp_path, run_dir)
    with pytest.raises(InputError, match=f"{run_dir / name} is a symbolic link"):
        store.repair()
        store.append(_record(1))
    assert tree_state(tmp_path, run_dir) == before
