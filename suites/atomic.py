"""Files that must never be seen half-written: `write_atomic` writes through a temporary file in
the target's directory, forces it to disk and renames it into place, so a killed process leaves
the old file or the new one, never a truncated one (run manifests, reports, plots, downloaded
archives and cached tensors all go through it). Imports nothing heavy."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(f)` on a temporary file beside `path`, then rename it over `path`. If `write`
    raises, the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`write_atomic` of UTF-8 text."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))
