"""SIGINT and SIGTERM during `bench run`: abandon the current cell, keep every finished one, say
how to resume, exit 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

While `interruptible(run_dir)` is active both signals raise `RunInterrupted` (a BaseException, so
no `except Exception` in a cell turns it into an error record); the cell being run writes no
record, and `--resume` reruns it. Records are appended one fsync'ed line at a time, and a
stop waits while a record is written and counted (`bench.stop_signals`), so nothing finished is
lost or named as abandoned; a line cut by a harder kill is repaired on resume.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from bench.stop_signals import STOP_SIGNALS, defer


class RunInterrupted(BaseException):
    """A SIGINT or SIGTERM arrived while the run was executing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.unfinished: tuple[str, ...] = ()  # the run's cells not finished, in plan order

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    if not defer(signum):  # inside stop_signals_held(), the block raises it as it ends
        raise RunInterrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into RunInterrupted inside the block (previous handlers after).
    Outside the main thread (where Python cannot set handlers) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in STOP_SIGNALS}
    try:
        yield
    except KeyboardInterrupt:  # a SIGINT that arrived as Python's own exception
        raise RunInterrupted(signal.SIGINT) from None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def report_interrupt(exc: RunInterrupted, run_dir: Path) -> int:
    """Print the one line that says what happened and how to go on; return the exit code."""
    name = signal.Signals(exc.signum).name
    quoted = shlex.quote(str(run_dir))
    if exc.unfinished:
        left = len(exc.unfinished) - 1
        more = f" ({left} more not started)" if left else ""
        stopped = f"stopped in cell {exc.unfinished[0]}{more}, which was abandoned"
    else:
        stopped = "stopped; the cell in progress was abandoned"
    print(
        f"bench: {name}: {stopped}; finished cells are kept in "
        f"{Path(run_dir) / 'records.jsonl'}; resume with: bench run --resume {quoted}",
        file=sys.stderr,
    )
    return exc.exit_code


def report_connect_interrupt(exc: RunInterrupted, ray_address: str | None) -> int:
    """The line for a stop while the launcher was being made (a Ray cluster joined or started):
    nothing ran and no run directory was made. Returns the exit code."""
    where = f"the Ray cluster at {ray_address}" if ray_address else "the launcher"
    name = signal.Signals(exc.signum).name
    print(
        f"bench: {name} while connecting to {where}; nothing was run", file=sys.stderr, flush=True
    )
    return exc.exit_code
