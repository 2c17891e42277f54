"""Review 2, item 9: a cache that cannot be written (disk full, read-only) costs only the
caching: the task goes on with the data it generated, after a warning naming the file. Before,
the task failed although its data was there (`RuntimeError: [enforce fail at
inline_container.cc] . unexpected pos 1344 vs 1238` on a full disk, `PermissionError` on a
read-only cache)."""

from __future__ import annotations

import logging
import os
import resource
import signal
from pathlib import Path

import pytest
import torch

from suites.data import DataRequest, TaskData
from suites.lra.listops.load import listops_cache_path, load_listops
from suites.lra.pathfinder.load import load_pathfinder, pathfinder_cache_path


def _request(cache: Path) -> DataRequest:
    return DataRequest(max_len=64, n_train=40, n_dev=10, n_test=10, seed=0, cache_dir=cache)


def _same(a: TaskData, b: TaskData) -> bool:
    return all(
        torch.equal(getattr(a, s).labels, getattr(b, s).labels)
        and all(
            torch.equal(x, y)
            for x, y in zip(getattr(a, s).inputs, getattr(b, s).inputs, strict=True)
        )
        for s in ("train", "dev", "test")
    )


def test_full_disk_warns_and_goes_on(tmp_path, caplog) -> None:
    """A real kernel refusal mid-file (RLIMIT_FSIZE: EFBIG, as a full disk refuses with ENOSPC)."""
    fresh = load_listops(_request(tmp_path / "fresh"))
    request = _request(tmp_path / "cache")
    path = listops_cache_path(request)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with caplog.at_level(logging.WARNING):
            data = load_listops(request)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert _same(data, fresh)
    assert f"could not write ListOps cache {path} (File too large)" in caplog.text
    assert list(path.parent.iterdir()) == []  # no cache file, no temporary left behind


def test_full_disk_pathfinder_warns_and_goes_on(tmp_path, caplog) -> None:
    request = DataRequest(max_len=1024, n_train=4, n_dev=2, n_test=2, seed=0, cache_dir=tmp_path)
    path = pathfinder_cache_path(request)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
    try:
        with caplog.at_level(logging.WARNING):
            data = load_pathfinder(request, workers=1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert len(data.train) == 4 and len(data.test) == 2
    assert f"could not write Pathfinder cache {path} (File too large)" in caplog.text
    assert not path.exists()


def test_read_only_cache_warns_and_goes_on(tmp_path, caplog) -> None:
    fresh = load_listops(_request(tmp_path / "fresh"))
    request = _request(tmp_path / "cache")
    path = listops_cache_path(request)
    path.parent.mkdir(parents=True)
    path.parent.chmod(0o555)
    try:
        if os.access(path.parent, os.W_OK):
            pytest.skip("this user can write a read-only folder (root): no read-only case here")
        with caplog.at_level(logging.WARNING):
            assert _same(load_listops(request), fresh)
    finally:
        path.parent.chmod(0o755)
    assert f"could not write ListOps cache {path} (Permission denied)" in caplog.text
    assert not path.exists()
