"""The cache of generated task data (written through `suites.atomic`, never seen half-written).

Generated data is cached at
`cache_dir/<task>/<prefix><hash>.pt`, the hash taken over every parameter that determines the
data, so a changed parameter can never reuse a stale file; each entry stores the SHA-256 of its
tensors, verified on load, and the loader's range check (token ids, labels) runs too: an entry
that fails either is regenerated, with a warning naming the file. Imports no torch at module level
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


def save_tensors(tensors: Mapping[str, Any], path: Path) -> None:
    """torch.save a dict of tensors atomically, with their content digest (checked on load)."""
    import torch

    entry = {**tensors, DIGEST_KEY: tensors_digest(tensors)}
    write_atomic(path, lambda f: torch.save(entry, f))


def load_tensors(
    path: Path, what: str, check: Callable[[Mapping[str, Any]], None] | None = None
) -> dict[str, Any] | None:
    """The tensors cached at `path`, or None when the file is absent or not to be trusted: then
    the caller regenerates them (and overwrites the file), after a warning naming the file and
    why. Untrusted: unreadable, without its content digest or not matching it (edited, bytes
    flipped, an older uoe-bench), or refused by `check` (KeyError/ValueError: a key missing, a
    token id or label out of range)."""
    import torch

    if not path.is_file():
        return None
    try:
        tensors = torch.load(path, weights_only=True)
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
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as err:
        reason = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        log.warning("ignoring %s cache %s (%s); regenerating it", what, path, reason)
        return None
    log.info("loaded %s from cache %s (digest verified)", what, path)
    return tensors


def check_range(tensors: Mapping[str, Any], key: str, low: int, high: int) -> None:
    """ValueError unless every value of tensors[key] lies in [low, high) (KeyError if absent)."""
    tensor = tensors[key]
    if tensor.numel() and (int(tensor.min()) < low or int(tensor.max()) >= high):
        raise ValueError(
            f"{key} holds values in [{int(tensor.min())}, {int(tensor.max())}], outside "
            f"[{low}, {high})"
        )
