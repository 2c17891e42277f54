"""Helpers shared by the LRA loaders that read files: where data is looked for, the "not found"
error, byte-level encoding, seeded subsets.

Data is looked for under `--data-dir` (DataRequest.data_dir) first, then where
`bench data download TASK` unpacks it: cache_dir/data/TASK.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from suites.data import DataRequest, DataUnavailable

DOWNLOAD_SUBDIR = "data"


def download_dir(cache_dir: Path, task: str) -> Path:
    """Where `bench data download TASK` unpacks TASK's archive."""
    return Path(cache_dir) / DOWNLOAD_SUBDIR / task


def data_roots(request: DataRequest, task: str) -> list[Path]:
    """Directories to search for TASK's files, in order: --data-dir, then the download dir."""
    roots = [Path(request.data_dir)] if request.data_dir is not None else []
    return [*roots, download_dir(request.cache_dir, task)]


def not_found(task: str, what: str, looked: Sequence[Path]) -> DataUnavailable:
    """The error for absent files: where we looked and the command that fetches them."""
    places = ", ".join(str(p) for p in looked)
    return DataUnavailable(
        f"{task}: {what} not found; looked in {places}. Fetch it with `bench data download "
        f"{task}` (or pass --data-dir {task}=DIR with the files in DIR)"
    )


class DataIncomplete(ValueError):
    """Part of a task's files is present and part missing: an error (the run records `error`
    naming what is missing), never a skip, since the user evidently meant to provide them."""


def check_not_partial(task: str, candidates: Sequence[tuple[Path, Sequence[Path]]]) -> None:
    """Raise DataIncomplete for the first candidate folder that exists and holds some of its
    required paths but not all (or is the task's own named folder, e.g. aclImdb/, but
    incomplete); the message names every missing path."""
    for folder, required in candidates:
        missing = [p for p in required if not p.exists()]
        own_folder = folder.name in ("aclImdb", "cifar-10-batches-py", "listops-1000")
        if missing and folder.is_dir() and (len(missing) < len(required) or own_folder):
            raise DataIncomplete(
                f"{task}: the data in {folder} is incomplete: missing "
                f"{', '.join(str(p) for p in missing)}. Complete it, or fetch it again with "
                f"`bench data download {task}`"
            )


def encode_bytes(texts: Sequence[bytes], max_len: int, where: str) -> tuple[torch.Tensor, ...]:
    """Byte-level tokens as LRA's ByteTextEncoder: byte b -> id b + 1 (1..256), 0 = padding.

    Each text keeps its first max_len bytes (LRA truncates to max_length). Returns
    ((N, max_len) int64 tokens, (N,) int64 lengths). An empty text is an error naming `where`.
    """
    tokens = np.zeros((len(texts), max_len), dtype=np.int64)
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        kept = np.frombuffer(text[:max_len], dtype=np.uint8)
        if not len(kept):
            raise ValueError(f"{where}: example {i} is empty; every example needs at least 1 byte")
        tokens[i, : len(kept)] = kept.astype(np.int64) + 1
        lengths[i] = len(kept)
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def seeded_order(n: int, seed: int, salt: int) -> torch.Tensor:
    """A permutation of range(n) fixed by (seed, salt): which examples a capped split keeps."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, salt]))
    return torch.from_numpy(rng.permutation(n).astype(np.int64))


class NotARegularFile(ValueError):
    """A data file's name is taken by a directory, FIFO, device or socket: an error naming it
    (the run records `error`), never a skip as "not found", since the path is plainly there."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_files(task: str, paths: Sequence[Path]) -> None:
    """Raise NotARegularFile for the first of `paths` that exists but is not a regular file
    (links followed). Only stat()ed, never opened: opening a FIFO would block."""
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):  # absent: the not-found error says so
            continue
        if stat.S_ISREG(mode):
            continue
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise NotARegularFile(
            f"{task}: {path} is {kind}, not a regular file; put the official file there, or "
            f"point --data-dir {task}=DIR at a folder that holds it"
        )
