"""Fault 3: one writer per run directory. Before, two `bench run --resume R` at once (or two
`--run-id same` started together) both exited 0 with every cell's record written twice."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from fault_helpers import SLOW_CELLS, bench_process, record_lines, run_args, wait_for

from bench.cli import main


def test_second_holder_is_refused_naming_the_first_pid(tmp_path) -> None:
    from bench.runner.lock import RunDirLocked, acquire, hold, release

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from bench.runner.lock import acquire; acquire(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunDirLocked, match=f"pid {holder.pid} "):
            acquire(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    fd = acquire(tmp_path)  # the lock died with its holder (SIGKILL): no stale lock
    release(fd)
    with hold(tmp_path):
        pass


def test_two_writers_of_one_run_directory_write_each_cell_once(tmp_path, capsys) -> None:
    argv = run_args(tmp_path, "same", *SLOW_CELLS, "--seeds", "0,1")
    first = bench_process(argv)
    run_dir = tmp_path / "runs" / "same"
    try:
        wait_for(lambda: (run_dir / "manifest.json").exists(), 120, "the first run to start")
        # A second `bench run --run-id same` and a `--resume` of it, while the first one runs.
        assert main(argv) == 2
        assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.count(f"is in use by pid {first.pid} ") == 2, err
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    cells = Counter(line.split('"task": ')[1].split(",")[0] for line in record_lines(run_dir))
    assert sum(cells.values()) == 6 and set(cells.values()) == {2}, cells  # 3 tasks x 2 seeds
