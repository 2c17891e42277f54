"""Fault 5: Pathfinder's generator workers die with their parent. Before, a SIGKILL of the
parent during generation left the pool's workers running (about 460 MB) for minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from fault_helpers import alive, children, wait_for

GENERATE = (
    "import os, sys\n"
    "from suites.lra.pathfinder.load import PATHFINDER32, generate_split\n"
    "print(os.getpid(), flush=True)\n"
    "generate_split(PATHFINDER32, 256 * 64, seed=0, split=0, workers=2)\n"
)


def test_pool_workers_die_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", GENERATE], stdout=subprocess.PIPE, text=True)
    workers: list[int] = []
    try:
        assert int(parent.stdout.readline()) == parent.pid
        wait_for(lambda: len(children(parent.pid)) >= 2, 120, "two pool workers")
        workers = children(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not any(alive(w) for w in workers), 10, "the workers to die")
    finally:
        for pid in workers:  # never leave them running, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
