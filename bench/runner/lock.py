"""An exclusive lock on a run directory, so that one process at a time writes its records.

`hold(run_dir)` takes `fcntl.flock(LOCK_EX | LOCK_NB)` on `<run_dir>/.lock` and writes the
holder's PID and host into it; a second writer (another `bench run --run-id` of the same name,
or a second `--resume`) fails at once with `RunDirLocked`, naming that PID. The kernel drops the
lock when its holder exits, however it exits (a SIGKILL included), so a stale `.lock` file never
blocks a resume: the PID in it is only read to name the holder. Any launcher that appends to a
run directory (the in-process runner, a Ray driver) takes this lock first; so taking it is also
where a run directory holding a symbolic link anywhere (`.lock`, `records.jsonl`, `traces/`, ...)
is refused, before anything is written (`suites.safe_files`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from models.errors import InputError
from suites.safe_files import open_nofollow, refuse_links

LOCK_FILE = ".lock"


class RunDirLocked(InputError):
    """Another process holds the run directory's lock; the message names its PID."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "an unknown process"


def acquire(run_dir: Path) -> int:
    """Take the run directory's lock (creating the directory); return the open lock file's
    descriptor (closing it releases the lock). Raises RunDirLocked if another process holds it,
    SymlinkRefused if the directory holds a symbolic link."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    refuse_links(run_dir)
    path = run_dir / LOCK_FILE
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunDirLocked(
            f"{run_dir} is in use by {_holder(path)} (lock {path}); wait for it to finish or "
            "stop it, then resume with --resume " + str(run_dir)
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


def release(fd: int) -> None:
    """Drop the lock taken by `acquire` (the file stays; its content names the last holder)."""
    os.close(fd)


@contextlib.contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """`with hold(run_dir):` the calling process is the only writer of run_dir."""
    fd = acquire(run_dir)
    try:
        yield
    finally:
        release(fd)
