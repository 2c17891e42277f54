"""The default language-modelling corpus: the Python standard library's own source, byte level.

It needs no download: every machine that runs the harness has it. The files are the `.py` files
under `sysconfig.get_paths()["stdlib"]` (or under `--data-dir`, any tree of `.py` files), minus
third-party and test folders (`EXCLUDED_DIRS`, which distributions package differently) and
files over `MAX_FILE_BYTES` (generated tables), sorted by relative path. Each file goes to one
split by the SHA-256 of its relative path (`split_of`), so a file never straddles two splits and
adding a file moves no other. A split's stream is its files' bytes concatenated in path order;
token = byte + 1 (0 is padding).

The standard library differs between Python versions (and patch releases): the record stores
the Python version and, per split, the file count, byte count and a SHA-256 over the relative
paths and contents, so two runs are comparable only when those hashes agree.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch

from suites.data import DataRequest, DataUnavailable
from suites.lm.segments import LMInfo, LMTaskData, protocol_text, segments

EXCLUDED_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
)
MAX_FILE_BYTES = 256 * 1024
SPLITS = ("train", "valid", "test")
# percent of files (by path hash) in each split
SPLIT_PERCENT = {"train": 90, "valid": 5, "test": 5}
BYTE_VOCAB = 257  # bytes 1..256, 0 = padding


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def corpus_files(root: Path) -> list[str]:
    """The relative POSIX paths of the corpus's files under `root`, sorted."""
    chosen = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if EXCLUDED_DIRS & set(rel.parts[:-1]) or not path.is_file() or path.is_symlink():
            continue
        if path.stat().st_size <= MAX_FILE_BYTES:
            chosen.append(rel.as_posix())
    return sorted(chosen)


def split_of(rel_path: str) -> str:
    """The split of a file: the first 8 hex digits of SHA-256(relative path) mod 100, cut at
    SPLIT_PERCENT's boundaries (90 / 5 / 5)."""
    bucket = int(hashlib.sha256(rel_path.encode()).hexdigest()[:8], 16) % 100
    edge = 0
    for split in SPLITS:
        edge += SPLIT_PERCENT[split]
        if bucket < edge:
            return split
    raise AssertionError("SPLIT_PERCENT must sum to 100")


@dataclass(frozen=True)
class SplitBytes:
    """One split's stream and its provenance: file count, byte count, content hash."""

    data: bytes
    files: int
    sha256: str

    def facts(self) -> dict[str, object]:
        return {"files": self.files, "bytes": len(self.data), "sha256": self.sha256}


def read_splits(root: Path) -> dict[str, SplitBytes]:
    """Each split's concatenated bytes; its sha256 covers every (relative path, length, bytes)."""
    parts: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    digests = {s: hashlib.sha256() for s in SPLITS}
    for rel in corpus_files(root):
        split = split_of(rel)
        content = (root / rel).read_bytes()
        parts[split].append(content)
        digests[split].update(f"{rel}\0{len(content)}\0".encode())
        digests[split].update(content)
    return {
        s: SplitBytes(b"".join(parts[s]), len(parts[s]), digests[s].hexdigest()) for s in SPLITS
    }


def byte_tokens(data: bytes) -> torch.Tensor:
    """(T,) int64 tokens: byte + 1."""
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).to(torch.int64) + 1


def load_stdlib(request: DataRequest) -> LMTaskData:
    """The corpus's segments: at most n_train / n_dev / n_test segments of max_len per split."""
    root = request.data_dir or stdlib_root()
    if not root.is_dir():
        raise DataUnavailable(f"stdlib corpus: {root} is not a directory of .py files")
    splits = read_splits(root)
    empty = [s for s in SPLITS if len(splits[s].data) < 2]
    if empty:
        raise DataUnavailable(
            f"stdlib corpus: no .py files for split(s) {', '.join(empty)} under {root}; point "
            "--data-dir at a larger tree of .py files"
        )
    caps = {"train": request.n_train, "valid": request.n_dev, "test": request.n_test}
    cut = {s: segments(byte_tokens(splits[s].data), request.max_len, caps[s]) for s in SPLITS}
    where = "--data-dir" if request.data_dir else "the standard library"
    version = sys.version.split()[0]
    info = LMInfo(
        token_unit="byte",
        protocol=protocol_text(request.max_len),
        corpus={
            "name": "python-stdlib",
            "python_version": version,
            "root": "data_dir" if request.data_dir else "stdlib",
            "split_rule": "sha256(relative path)[:8] mod 100: <90 train, <95 valid, else test",
            **{s: splits[s].facts() for s in SPLITS},
        },
    )
    source = (
        f"Python {version} {where} .py files, byte level (differs across Python versions: "
        f"compare by the sha256 in the record); test sha256 {splits['test'].sha256[:12]}"
    )
    return LMTaskData(cut["train"], cut["valid"], cut["test"], source=source, info=info)
