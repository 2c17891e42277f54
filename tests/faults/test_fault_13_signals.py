"""Fault 13: SIGINT and SIGTERM stop a run cleanly: the cell in progress is abandoned, every
finished cell is kept, one line says how to resume, and the exit status is 130 / 143. Before,
SIGINT printed a 21-frame traceback and SIGTERM printed nothing."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter

import pytest
from fault_helpers import (
    SLOW_CELLS,
    TINY,
    bench_process,
    record_lines,
    run_args,
    stub_measurements,
    wait_for,
)

from bench.cli import main
from bench.records import RecordStore, read_records


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_run_with_one_line_and_resume_finishes_it(
    tmp_path, monkeypatch, signum, code
) -> None:
    argv = run_args(tmp_path, "r", *SLOW_CELLS)  # 3 cells
    run_dir = tmp_path / "runs" / "r"
    child = bench_process(argv)
    try:
        wait_for(lambda: len(record_lines(run_dir)) >= 1, 240, "the first finished cell")
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == code, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "--resume" in line]
    kept = len(record_lines(run_dir))
    assert kept in (1, 2)  # at least one cell finished, not all three
    finished = {str(r.cell) for r in read_records(run_dir)}
    (line,) = lines
    named = re.fullmatch(
        rf"bench: {signal.Signals(signum).name}: stopped in cell (\S+)"
        rf"(?: \((\d) more not started\))?, which was abandoned; finished cells are kept in "
        rf"{re.escape(str(run_dir / 'records.jsonl'))}; resume with: bench run --resume "
        rf"{re.escape(str(run_dir))}",
        line,
    )
    assert named, err
    assert named.group(1) not in finished  # the interrupted cell, not a finished one
    assert int(named.group(2) or 0) == 3 - kept - 1

    stub_measurements(monkeypatch)
    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 0
    cells = Counter((r.task, r.seed) for r in read_records(run_dir))
    assert len(cells) == 3 and all(r.status == "ok" for r in read_records(run_dir))
    assert len(record_lines(run_dir)) == 3, "a finished cell was run twice"


def test_a_signal_while_a_record_is_written_names_the_next_cell(
    tmp_path, monkeypatch, capsys
) -> None:
    """The race CI caught: SIGINT sent while the first cell's record was being written was
    delivered before the run had counted that cell as done, so the one line named a finished
    cell as abandoned. The signal now waits until the record and its bookkeeping are both in."""
    stub_measurements(monkeypatch)
    write = RecordStore.append
    sent = []

    def append_then_signal(self, record) -> None:
        write(self, record)
        if not sent:  # the first record only: as if the signal landed mid-write
            sent.append(record.cell)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(RecordStore, "append", append_then_signal)
    run_dir = tmp_path / "runs" / "r"
    assert main(run_args(tmp_path, "r", *TINY)) == 130
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "--resume" in line]
    (finished,) = [str(r.cell) for r in read_records(run_dir)]
    assert str(sent[0]) == finished
    stopped_in = re.search(r"stopped in cell (\S+)", line).group(1)
    assert stopped_in != finished, line
    assert "(1 more not started)" in line, line  # 3 smoke cells: 1 done, 1 abandoned, 1 left
