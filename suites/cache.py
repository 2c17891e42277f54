"""The cache of generated task data (written through `suites.atomic`, never seen half-written).

Generated data is cached at
`cache_dir/<task>/<prefix><hash>.pt`, the hash taken over every parameter that determines the
data, so a changed parameter can never reuse a stale file; each entry stores the SHA-256 of its
tensors, verified on load, and the loader's range check (token ids, labels) runs too: an entry
that fails either, or is no torch file at all, is regenerated, with a warning naming the file.
A cache that cannot be written (disk full, read-only) is warned about the same way, and the
generated data used uncached. Imports no torch at module level
(the manifest writer uses this module and reports stay light).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from suites.atomic import write_atomic

log = logging.getLogger(__name__)


def cache_file(cache_dir: Path, task: str, params: Mapping[str, Any], prefix: str = "") -> Path:
    """cache_dir/task/<prefix><16 hex digits of the SHA-256 of the canonical JSON of params>.pt."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return Path(cache_dir) / task / f"{prefix}{key}.pt"


DIGEST_KEY = "__sha256__"


def tensors_digest(tensors: Mapping[str, Any]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (in name order)."""
    digest = hashlib.sha256()
    for name in sorted(k for k in tensors if k != DIGEST_KEY):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_tensors(tensors: Mapping[str, Any], path: Path, what: str = "data") -> None:
    """torch.save a dict of tensors atomically, with their content digest (checked on load).
    A cache that cannot be written (disk full, read-only, a directory in the way) costs only
    the caching: a warning names the file and the cause, no partial file is left, and the
    caller goes on with the tensors it has."""
    import torch

    entry = {**tensors, DIGEST_KEY: tensors_digest(tensors)}
    try:
        write_atomic(path, lambda f: torch.save(entry, f))
    except (OSError, RuntimeError) as err:
        cause = _write_error(err)
        if cause is None:  # a RuntimeError that no failed write caused is a bug: raise it
            raise
        log.warning(
            "could not write %s cache %s (%s); going on with the generated data, uncached",
            what,
            path,
            cause.strerror or cause,
        )


def _write_error(err: BaseException) -> OSError | None:
    """The OSError behind a failed write: `err` itself, or the one torch.save's zip writer
    turned into `RuntimeError: ... unexpected pos` (kept as its context)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def load_tensors(
    path: Path, what: str, check: Callable[[Mapping[str, Any]], None] | None = None
) -> dict[str, Any] | None:
    """The tensors cached at `path`, or None when the file is absent or not to be trusted: then
    the caller regenerates them (and overwrites the file), after a warning naming the file and
    why. Untrusted: not a regular file (a directory), not a torch file at all (text, empty),
    without its content digest or not matching it (edited, bytes flipped, an older uoe-bench),
    or refused by `check` (KeyError/ValueError: a key missing, a token id or label out of
    range)."""
    import torch

    if not path.exists():
        return None
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        log.warning(
            "ignoring %s cache %s (%s, not a cache file; remove it to cache the data again); "
            "regenerating it",
            what,
            path,
            kind,
        )
        return None
    try:
        tensors = torch.load(path, weights_only=True)
    except Exception as err:  # the file is bytes from disk: any failure to unpickle is damage
        log.warning("ignoring %s cache %s (%s); regenerating it", what, path, _unreadable(err))
        return None
    try:
        if not isinstance(tensors, dict) or not all(
            isinstance(t, torch.Tensor) for k, t in tensors.items() if k != DIGEST_KEY
        ):
            raise ValueError("not a dict of tensors")
        stored = tensors.pop(DIGEST_KEY, None)
        if stored is None:
            raise ValueError("no content digest (written by an older uoe-bench)")
        if stored != tensors_digest(tensors):
            raise ValueError("content does not match its SHA-256 digest (the file was altered)")
        if check is not None:
            check(tensors)
    except (KeyError, ValueError) as err:
        reason = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        log.warning("ignoring %s cache %s (%s); regenerating it", what, path, reason)
        return None
    log.info("loaded %s from cache %s (digest verified)", what, path)
    return tensors


def _unreadable(err: Exception) -> str:
    """Why torch.load refused a file, in one line. torch's UnpicklingError text advises
    weights_only=False, never right for a cache: only its type is kept."""
    lines = str(err).strip().splitlines()
    detail = "" if isinstance(err, pickle.UnpicklingError) or not lines else f": {lines[0][:120]}"
    return f"unreadable: {type(err).__name__}{detail}"


def check_range(tensors: Mapping[str, Any], key: str, low: int, high: int) -> None:
    """ValueError unless every value of tensors[key] lies in [low, high) (KeyError if absent)."""
    tensor = tensors[key]
    if tensor.numel() and (int(tensor.min()) < low or int(tensor.max()) >= high):
        raise ValueError(
            f"{key} holds values in [{int(tensor.min())}, {int(tensor.max())}], outside "
            f"[{low}, {high})"
        )
