"""Files that must never be seen half-written, and the cache of generated task data.

`write_atomic` writes through a temporary file in the target's directory and renames it into
place, so a killed process leaves the old file or the new one, never a truncated one (the run
manifest, downloaded archives and cached tensors all go through it). Generated data is cached at
`cache_dir/<task>/<prefix><hash>.pt`, the hash taken over every parameter that determines the
data, so a changed parameter can never reuse a stale file. Imports no torch at module level
(the manifest writer uses this module and reports stay light).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


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


def cache_file(cache_dir: Path, task: str, params: Mapping[str, Any], prefix: str = "") -> Path:
    """cache_dir/task/<prefix><16 hex digits of the SHA-256 of the canonical JSON of params>.pt."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / task / f"{prefix}{key}.pt"


def save_tensors(tensors: Mapping[str, Any], path: Path) -> None:
    """torch.save a dict of tensors atomically."""
    import torch

    write_atomic(path, lambda f: torch.save(dict(tensors), f))


def load_tensors(path: Path, what: str) -> dict[str, Any] | None:
    """The tensors cached at `path`, or None when the file is absent or unreadable (then the
    caller regenerates them; an unreadable file is reported with the reason)."""
    import torch

    if not path.is_file():
        return None
    try:
        tensors = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        log.warning("ignoring unreadable %s cache %s (%s); regenerating", what, path, err)
        return None
    log.info("loaded %s from cache %s", what, path)
    return tensors
