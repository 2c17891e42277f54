"""Worker processes that never outlive the process that started them.

`bound_pool(n)` is a fork ProcessPoolExecutor whose workers run `die_with_parent` first: on Linux
`prctl(PR_SET_PDEATHSIG, SIGKILL)` makes the kernel kill a worker the moment its parent dies,
however the parent dies (SIGKILL included); elsewhere a daemon thread polls the parent's PID. The
workers also ignore SIGINT and SIGTERM (the parent handles them, and they die with it), so a
Ctrl-C prints no traceback per worker. On leaving the block by an exception the pool's pending
work is cancelled instead of waited for.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: be killed when `parent_pid` exits; leave signals to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


@contextlib.contextmanager
def bound_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A fork process pool of `workers` whose workers die with this process."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=get_context("fork"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(pool, "_processes", {}).values()):  # stop work in flight
            process.kill()
        raise
    pool.shutdown(wait=True)
