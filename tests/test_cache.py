"""The one atomic write and the hash-keyed cache file names every loader and the manifest use."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from suites.atomic import write_atomic, write_text_atomic
from suites.cache import cache_file, load_tensors, save_tensors


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "manifest.json"
    write_text_atomic(path, "old")

    def half_then_fail(f) -> None:
        f.write(b"new but trunc")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        write_atomic(path, half_then_fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"]


def test_cache_file_hashes_the_canonical_json_of_every_parameter(tmp_path: Path) -> None:
    params = {"seed": 1, "n": [3, 4], "version": 2}
    # Independent: sorted keys, no spaces, first 16 hex digits of SHA-256.
    key = hashlib.sha256(b'{"n":[3,4],"seed":1,"version":2}').hexdigest()[:16]
    assert cache_file(tmp_path, "task", params, "pf32-") == tmp_path / "task" / f"pf32-{key}.pt"
    assert cache_file(tmp_path, "task", dict(reversed(params.items()))) == tmp_path / "task" / (
        f"{key}.pt"
    )
    assert cache_file(tmp_path, "task", {**params, "seed": 2}).name != f"{key}.pt"


def test_tensors_round_trip_and_an_unreadable_file_reads_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "t" / "x.pt"
    assert load_tensors(path, "test") is None
    save_tensors({"a": torch.arange(3)}, path)
    assert torch.equal(load_tensors(path, "test")["a"], torch.arange(3))
    path.write_bytes(b"not a torch file")
    assert load_tensors(path, "test") is None
