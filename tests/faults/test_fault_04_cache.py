"""Fault 4: a cached data set that was altered is never used. Before, a ListOps cache with its
test labels shifted by one loaded silently (a wrong accuracy recorded), an out-of-vocabulary
token gave IndexError and kept the cache, a Pathfinder cache with other keys failed every run
with `KeyError: 'train.images'`, and one with flipped bytes was used. Now each entry carries the
SHA-256 of its tensors and the loader's range check; a bad entry is regenerated with a warning
naming the file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from fault_helpers import listops_request, same_task_data

from suites.data import DataRequest
from suites.lra.listops.load import listops_cache_path, load_listops
from suites.lra.pathfinder.load import load_pathfinder, pathfinder_cache_path


def _pathfinder_request(cache: Path) -> DataRequest:
    return DataRequest(max_len=1024, n_train=4, n_dev=2, n_test=2, seed=0, cache_dir=cache)


def _tamper(path: Path, edit) -> None:
    """Change the cached tensors the way bit rot or a hand edit would (the file stays a valid
    torch file; whatever digest it held is not updated)."""
    entry = torch.load(path, weights_only=True)
    edit(entry)
    torch.save(entry, path)


LISTOPS_EDITS = {
    "test labels shifted by one": lambda e: e.__setitem__(
        "test.labels", (e["test.labels"] + 1) % 10
    ),
    "token out of the vocabulary": lambda e: e["train.tokens"].__setitem__((0, 0), 99),
    "label out of range": lambda e: e["dev.labels"].__setitem__(0, 10),
}


@pytest.mark.parametrize("edit", list(LISTOPS_EDITS))
def test_altered_listops_cache_is_regenerated_with_a_warning(tmp_path, caplog, edit) -> None:
    request = listops_request(tmp_path / "cache")
    fresh = load_listops(request)
    path = listops_cache_path(request)
    _tamper(path, LISTOPS_EDITS[edit])
    with caplog.at_level(logging.WARNING):
        again = load_listops(request)
    assert same_task_data(again, fresh), "the altered cache was used"
    assert f"ignoring ListOps cache {path}" in caplog.text
    assert same_task_data(load_listops(request), fresh)  # and the file was rewritten, good again


def test_listops_cache_with_flipped_bytes_is_regenerated(tmp_path, caplog) -> None:
    request = listops_request(tmp_path / "cache")
    fresh = load_listops(request)
    path = listops_cache_path(request)
    raw = bytearray(path.read_bytes())
    # Flip bytes inside the stored token data (not the zip directory): find the test tokens.
    needle = fresh.test.inputs[0].numpy().tobytes()[:64]
    at = bytes(raw).find(needle)
    assert at > 0
    raw[at + 8] ^= 0x05
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        again = load_listops(request)
    assert same_task_data(again, fresh) and str(path) in caplog.text


@pytest.mark.parametrize("edit", ["other keys", "flipped label", "wrong shape"])
def test_altered_pathfinder_cache_is_regenerated(tmp_path, caplog, edit) -> None:
    request = _pathfinder_request(tmp_path / "cache")
    fresh = load_pathfinder(request, workers=1)
    path = pathfinder_cache_path(request)

    def change(entry):
        if edit == "other keys":
            entry["train.pixels"] = entry.pop("train.images")
        elif edit == "flipped label":
            entry["test.labels"][0] = 1 - entry["test.labels"][0]
        else:
            entry["dev.images"] = entry["dev.images"][:, :16]

    _tamper(path, change)
    with caplog.at_level(logging.WARNING):
        again = load_pathfinder(request, workers=1)
    assert same_task_data(again, fresh)
    assert f"ignoring Pathfinder cache {path}" in caplog.text
