"""Keep what the user did not ask for off the terminal, at its source and nowhere else.

- torch's profiler (kineto) writes `USDT: ... SyncActivityProfilerHandler.cpp ... profiler_start`
  / `profiler_stop` to file descriptor 2 from C++ at every start and stop, and the CPU allocator
  warns `Memory block of unknown size` when a block allocated before profiling is freed under
  it. `profiler_noise_filtered()` catches fd 2 around the profiler's start and stop (or a
  profiled phase) and writes back every line except those, so a real error still shows.
- fvcore scripts two loss functions with `torch.jit.script` when imported, which warns
  `torch.jit.script is deprecated` each time; `import_fvcore_nn()` imports it with that one
  warning ignored.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

PROFILER_NOISE = re.compile(
    r"^(USDT:.*SyncActivityProfilerHandler\.cpp.*profiler_(start|stop)"
    r"|.*CPUAllocator\.cpp.*Memory block of unknown size.*)$"
)


def is_profiler_noise(line: str) -> bool:
    return bool(PROFILER_NOISE.match(line.rstrip("\r\n")))


@contextlib.contextmanager
def profiler_noise_filtered() -> Iterator[None]:
    """Capture file descriptor 2 for the block, then write back every line that is not the
    profiler's start/stop chatter (any other output, an error included, reaches stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not is_profiler_noise(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_fvcore_nn() -> ModuleType:
    """`fvcore.nn`, imported without its `torch.jit.script is deprecated` warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning
        )
        import fvcore.nn
        import fvcore.nn.jit_handles

    return fvcore.nn
