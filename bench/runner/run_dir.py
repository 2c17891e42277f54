"""Where a run's directory is and whether it can be written, checked before any cell runs.

A run id names one directory directly under `--out`, by one rule (`RUN_ID_RULE`, which the
refusal states word for word): 1 to 128 letters, digits, '.', '_' and '-', the first a letter or
a digit. So `--run-id ../../x` or `/abs` can never write outside --out, no id holds a space, a
quote or a newline that would break a printed command or a log line, none is hidden, and none
exceeds a file name's length limit. An `--out` (or a resumed directory) that
cannot be written is refused with the reason and the fix, not a traceback.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from models.errors import InputError

RUN_ID_RULE = (
    "a run id is 1 to 128 characters, each a letter, a digit, '.', '_' or '-', the first a "
    "letter or a digit"
)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """`run_id` if it keeps RUN_ID_RULE; else InputError stating the rule."""
    if not _RUN_ID.fullmatch(run_id):
        raise InputError(f"--run-id {run_id!r} is refused: {RUN_ID_RULE}")
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
