"""The signals that stop a `bench run` (SIGINT, SIGTERM), and a block that makes them wait.

`bench.runner.interrupt` turns both signals into `RunInterrupted`. Inside `stop_signals_held()`
its handler only notes the signal, and the block delivers it as it ends. The run holds them
while a record is written and counted, so the line on disk and the run's account of what is
still to run change together: a stop never falls between them, and never cuts a line.

Why not `signal.pthread_sigmask`: it blocks a signal for the calling thread only, and a torch
process has other threads (an OpenMP or BLAS pool from import on), so the kernel hands a
`kill PID` signal to one of those; CPython then runs the handler in the main thread anyway,
inside the masked block. The deferral must happen in the handler, which Python always runs in
the main thread between bytecodes.

The state is process-wide, as signal handlers are; it is used from the main thread only.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class _Hold:
    depth: int = 0  # open stop_signals_held() blocks
    pending: int | None = None  # the first stop signal that arrived inside them


_HOLD = _Hold()


def defer(signum: int) -> bool:
    """For the handler: True (and the signal kept for later) when inside a held block."""
    if _HOLD.depth == 0:
        return False
    if _HOLD.pending is None:
        _HOLD.pending = signum
    return True


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Run the block whole: a stop signal that arrives meanwhile is re-raised, to the handler
    installed then, as the outermost held block ends (even when the block raised)."""
    _HOLD.depth += 1
    try:
        yield
    finally:
        _HOLD.depth -= 1
        if _HOLD.depth == 0 and _HOLD.pending is not None:
            signum, _HOLD.pending = _HOLD.pending, None
            signal.raise_signal(signum)
