"""Where a run's directory is and whether it can be written, checked before any cell runs.

A run id names one directory directly under `--out`: a single path component, so `--run-id
../../x` or `--run-id /abs` can never write outside it. An `--out` (or a resumed directory) that
cannot be written is refused with the reason and the fix, not a traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from models.errors import InputError


def check_run_id(run_id: str) -> str:
    """`run_id` if it is one plain path component; else ValueError saying what is allowed."""
    bad = (
        not run_id
        or run_id in (".", "..")
        or "/" in run_id
        or "\\" in run_id
        or "\0" in run_id
        or (os.altsep is not None and os.altsep in run_id)
    )
    if bad:
        raise InputError(
            f"--run-id {run_id!r} is not a single directory name; run ids name a directory "
            "directly under --out (letters, digits, '-', '_', '.'; no '/' and not '..')"
        )
    return run_id


def check_writable(directory: Path, what: str) -> None:
    """Create `directory` if needed and prove it writable by creating a file in it."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise InputError(
            f"{what} {directory} cannot be written ({reason}); pass a directory you can write"
        ) from None
