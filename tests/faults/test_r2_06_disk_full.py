"""Review 2, item 6: a records file that cannot be written (disk full, a read-only folder) stops
the run with one line naming the file and the cause, and leaves no half record. Before, the run
ended in a traceback with half a record on disk, which the resume then recovered with a warning
blaming "a run killed mid-write"."""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal

import pytest
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from bench.records import Record, RecordStore, read_records
from models.errors import InputError


def _record(seed: int) -> Record:
    return Record(
        run_id="r", suite="smoke", task="majority", model="m", scale="tiny", seed=seed,
        status="ok", metrics={"accuracy": 0.5},
    )  # fmt: skip


def _fail_writes_to(monkeypatch, name: str, after_bytes: int, code: int = errno.ENOSPC) -> None:
    """os.write to a file called `name` writes `after_bytes` bytes, then fails with `code`."""
    real_write = os.write

    def write(fd: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(name) and len(data) > after_bytes:
            real_write(fd, bytes(data[:after_bytes]))
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)


def test_disk_full_append_is_rolled_back_and_named(tmp_path, monkeypatch) -> None:
    store = RecordStore(tmp_path)
    store.append(_record(0))
    before = store.path.read_bytes()
    _fail_writes_to(monkeypatch, "records.jsonl", after_bytes=40)
    with pytest.raises(InputError) as caught:
        store.append(_record(1))
    message = str(caught.value)
    assert str(store.path) in message and "No space left on device" in message
    assert "partial record was removed" in message and "\n" not in message
    assert store.path.read_bytes() == before  # rolled back to the size before
    monkeypatch.undo()
    store.append(_record(2))
    assert [r.seed for r in store.read()] == [0, 2]


def test_file_size_limit_cuts_no_record(tmp_path, caplog) -> None:
    """A real kernel refusal mid-line (RLIMIT_FSIZE: EFBIG, as a full disk refuses with ENOSPC),
    whatever layer of Python does the writing."""
    store = RecordStore(tmp_path)
    store.append(_record(0))
    before = store.path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 50, hard))
    try:
        with pytest.raises(InputError, match="File too large"):
            store.append(_record(1))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert store.path.read_bytes() == before
    with caplog.at_level(logging.WARNING):
        store.repair()
        store.append(_record(2))
        assert [r.seed for r in store.read()] == [0, 2]
    assert "killed mid-write" not in caplog.text


def test_run_stops_with_one_line_and_resumes(tmp_path, monkeypatch, capsys, caplog) -> None:
    stub_measurements(monkeypatch)
    run_dir = tmp_path / "runs" / "r"
    _fail_writes_to(monkeypatch, "records.jsonl", after_bytes=100)
    assert main(run_args(tmp_path, "r", *TINY)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    line = next(x for x in err.splitlines() if x.startswith("bench: error:"))
    assert f"cannot write {run_dir / 'records.jsonl'} (No space left on device)" in line
    assert f"bench run --resume {run_dir}" in line
    assert (run_dir / "records.jsonl").read_bytes() == b""  # the first record was rolled back

    monkeypatch.undo()  # space again
    stub_measurements(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    assert "killed mid-write" not in caplog.text and "garbled" not in caplog.text
    records = read_records(run_dir)
    assert sorted(r.task for r in records) == ["first", "majority", "match"]
    assert all(r.status == "ok" for r in records)


def test_read_only_records_file_is_named(tmp_path, monkeypatch, capsys) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY)) == 0
    run_dir = tmp_path / "runs" / "r"
    path = run_dir / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # one cell left to run
    path.chmod(0o444)
    if os.access(path, os.W_OK):
        pytest.skip("this user can write a read-only file (root): no read-only case here")
    before = path.read_bytes()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"bench: error: cannot write {path} (Permission denied)" in err
    assert path.read_bytes() == before
    path.chmod(0o644)
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    assert len(read_records(run_dir)) == 3
