"""Fault review 2, item 18 (temp files): a SIGKILL during `bench report --out` (or any atomic
write: manifest, cache entry, download) left a hidden zero-byte `.<name>.XXXX.tmp` beside the
target, and nothing ever removed it: they piled up. Now the next atomic write into that folder
removes the temp files of our own pattern whose writer (this host, that PID) is gone, and leaves
alone those of a writer still running."""

from __future__ import annotations

import signal
import subprocess
import sys

from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main

# A child that starts an atomic write of `path` and is SIGKILLed in the middle of it.
KILLED_WRITER = """
import os, signal, sys
from suites.atomic import write_atomic

def write(f):
    f.flush()  # the temp file exists, empty: then the process dies
    os.kill(os.getpid(), signal.SIGKILL)

write_atomic(sys.argv[1], write)
"""


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _killed_writer(path) -> None:
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=False)
    assert child.returncode == -signal.SIGKILL


def test_temp_files_of_killed_report_writers_do_not_pile_up(tmp_path, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 0
    run_dir = tmp_path / "runs" / "r"
    out = tmp_path / "report"
    assert main(["report", str(run_dir), "--out", str(out), "--no-plots"]) == 0
    for name in ("accuracy_smoke_tiny.md", "accuracy_smoke_tiny.md", "other.png"):
        _killed_writer(out / name)
        assert len(_hidden(out)) == 1, _hidden(out)  # its own: the one before it was removed

    assert main(["report", str(run_dir), "--out", str(out), "--no-plots"]) == 0

    assert _hidden(out) == []
    assert "| model " in (out / "accuracy_smoke_tiny.md").read_text()


def test_a_running_writers_temp_file_is_left_alone(tmp_path) -> None:
    from suites.atomic import write_text_atomic

    started = tmp_path / "started"
    code = (
        "import sys, time, pathlib\n"
        "from suites.atomic import write_atomic\n"
        "def write(f):\n"
        "    f.write(b'half'); f.flush(); pathlib.Path(sys.argv[2]).touch(); time.sleep(60)\n"
        "write_atomic(sys.argv[1], write)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "big.pt"), str(started)])
    try:
        from fault_helpers import wait_for

        wait_for(started.exists, 60, "the writer to start")
        running = _hidden(tmp_path)
        assert len(running) == 1
        _killed_writer(tmp_path / "small.pt")
        assert len(_hidden(tmp_path)) == 2
        write_text_atomic(tmp_path / "next.txt", "x\n")
        assert _hidden(tmp_path) == running  # the dead writer's temp went, the live one stays
    finally:
        writer.kill()
        writer.wait()
