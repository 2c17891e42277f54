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

import pytest
from fault_helpers import listops_request, same_task_data

from suites.data import DataRequest
from suites.lra.listops.load import listops_cache_path, load_listops
from suites.lra.pathfinder.load import load_pathfinder, pathfinder_cache_path


def test_full_disk_warns_and_goes_on(tmp_path, caplog) -> None:
    """A real kernel refusal mid-file (RLIMIT_FSIZE: EFBIG, as a full disk refuses with ENOSPC)."""
    fresh = load_listops(listops_request(tmp_path / "fresh"))
    request = listops_request(tmp_path / "cache")
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
    assert same_task_data(data, fresh)
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
    fresh = load_listops(listops_request(tmp_path / "fresh"))
    request = listops_request(tmp_path / "cache")
    path = listops_cache_path(request)
    path.parent.mkdir(parents=True)
    path.parent.chmod(0o555)
    try:
        if os.access(path.parent, os.W_OK):
            pytest.skip("this user can write a read-only folder (root): no read-only case here")
        with caplog.at_level(logging.WARNING):
            assert same_task_data(load_listops(request), fresh)
    finally:
        path.parent.chmod(0o755)
    assert f"could not write ListOps cache {path} (Permission denied)" in caplog.text
    assert not path.exists()
