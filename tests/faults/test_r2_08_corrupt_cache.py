"""Review 2, item 8: a cache entry that is not a torch file at all (plain text, or a directory
where the file should be) is reported, naming the file, and its data regenerated. Before, a
text entry failed its task on every run with `IndexError: pop from empty list` (or a
misleading "missing key 101"), naming no file and never regenerated; a directory failed it
with `IsADirectoryError` from the cache write."""

from __future__ import annotations

import logging

import pytest
import torch
from fault_helpers import listops_request, same_task_data

from suites.data import DataRequest
from suites.lra.listops.load import listops_cache_path, load_listops
from suites.lra.pathfinder.load import load_pathfinder, pathfinder_cache_path

# What may sit where a cache file should be: text a person or a tool left there.
TEXTS = {
    "dots": b"...\n",
    "a word": b"hello\n",
    "a git-lfs pointer": b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n",
    "empty": b"",
}


@pytest.mark.parametrize("text", list(TEXTS))
def test_text_entry_is_named_and_regenerated(tmp_path, caplog, text) -> None:
    fresh = load_listops(listops_request(tmp_path / "fresh"))
    request = listops_request(tmp_path / "cache")
    path = listops_cache_path(request)
    path.parent.mkdir(parents=True)
    path.write_bytes(TEXTS[text])
    with caplog.at_level(logging.WARNING):
        again = load_listops(request)
    assert same_task_data(again, fresh)
    assert f"ignoring ListOps cache {path} (unreadable: " in caplog.text  # the error, not a key
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert same_task_data(load_listops(request), fresh)  # the entry was rewritten, good again
    assert f"loaded ListOps from cache {path}" in caplog.text


def test_pathfinder_text_entry_is_named_and_regenerated(tmp_path, caplog) -> None:
    request = DataRequest(max_len=1024, n_train=4, n_dev=2, n_test=2, seed=0, cache_dir=tmp_path)
    path = pathfinder_cache_path(request)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"...\n")
    with caplog.at_level(logging.WARNING):
        data = load_pathfinder(request, workers=1)
    assert len(data.train) == 4
    assert f"ignoring Pathfinder cache {path}" in caplog.text
    assert torch.load(path, weights_only=True)["train.labels"].shape == (4,)


@pytest.mark.parametrize("content", ["empty", "holding a file"])
def test_directory_entry_is_named_and_the_task_goes_on(tmp_path, caplog, content) -> None:
    fresh = load_listops(listops_request(tmp_path / "fresh"))
    request = listops_request(tmp_path / "cache")
    path = listops_cache_path(request)
    path.mkdir(parents=True)
    if content == "holding a file":
        (path / "notes.txt").write_text("mine\n")
    with caplog.at_level(logging.WARNING):
        assert same_task_data(load_listops(request), fresh)
    assert f"ignoring ListOps cache {path} (a directory" in caplog.text
    assert f"could not write ListOps cache {path}" in caplog.text
    if content == "holding a file":  # a directory is never deleted: it may hold someone's files
        assert (path / "notes.txt").read_text() == "mine\n"
