"""Review 2, item 18 (all but file modes and report temp files): a missing manifest, a
`--cache-dir` that is a file, a seed out of range, an empty `BENCH_CACHE_DIR`, and a staging
folder left by a download killed during its unpack.

Before: a run folder whose manifest was lost got "is it a bench run directory?" (not the
recovery a corrupt manifest gets); a file as --cache-dir was not checked up front; a seed of 20
digits failed every cell with an overflow; an empty BENCH_CACHE_DIR put the cache in the working
directory; a killed unpack's `.TASK.partial-*` folder stayed forever."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import pytest
from fault_helpers import TINY, record_lines, run_args, stub_measurements
from hostile_archives import add_file, write_tar

from bench.cli import main


def test_missing_manifest_gets_the_recovery(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    assert main([*run_args(tmp_path), *TINY, "--tasks", "majority"]) == 0
    run_dir = tmp_path / "runs" / "r"
    (run_dir / "manifest.json").unlink()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"no manifest.json in {run_dir}, but its records.jsonl is there" in err
    assert f"The finished cells in {run_dir / 'records.jsonl'} are intact" in err
    assert "(from " + str(run_dir / "command.txt") + ")" in err
    assert "with a new --run-id" in err
    assert "is it a `bench run` directory" not in err
    assert len(record_lines(run_dir)) == 1


def test_folder_that_is_no_run_still_says_so(tmp_path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["run", "--resume", str(tmp_path / "empty")]) == 2
    assert "is it a `bench run` directory?" in capsys.readouterr().err


def test_cache_dir_that_is_a_file_is_refused_up_front(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    blocker = tmp_path / "cache-file"
    blocker.write_text("not a folder")
    argv = ["run", *TINY, "--tasks", "majority", "--out", str(tmp_path / "runs")]
    argv += ["--run-id", "r", "--cache-dir", str(blocker)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"bench: error: --cache-dir {blocker} is a file, not a directory" in err
    assert not (tmp_path / "runs" / "r").exists()
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("seeds", ["99999999999999999999", "-1", "0,4294967296"])
def test_seed_out_of_range_is_refused_up_front(tmp_path, capsys, monkeypatch, seeds) -> None:
    stub_measurements(monkeypatch)
    assert main([*run_args(tmp_path), *TINY, "--tasks", "majority", "--seeds", seeds]) == 2
    err = capsys.readouterr().err
    assert "is out of range: seeds are integers from 0 to 4294967295" in err
    assert not (tmp_path / "runs" / "r").exists()


def test_largest_seed_runs(tmp_path, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY, "--tasks", "majority", "--seeds", "4294967295"]
    assert main(argv) == 0


@pytest.mark.parametrize("command", ["run", "data"])
def test_empty_cache_env_is_refused(tmp_path, capsys, monkeypatch, command) -> None:
    stub_measurements(monkeypatch)
    monkeypatch.setenv("BENCH_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    if command == "run":
        argv = ["run", *TINY, "--tasks", "majority", "--out", str(tmp_path / "runs")]
    else:
        argv = ["data", "status"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "BENCH_CACHE_DIR is set but empty" in err
    assert "unset it, set it to a directory, or pass --cache-dir" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing in the working directory


def test_stale_staging_folders_are_removed_on_the_next_download(tmp_path, capsys) -> None:
    data = tmp_path / "cache" / "data"
    data.mkdir(parents=True)
    dead = data / ".image.partial-4194399-abcd"  # above any pid_max: that process is gone
    legacy = data / ".image.partial-xyz"  # named before the pid was in the name
    live = data / f".image.partial-{os.getpid()}-live"  # a download still running
    other_task = data / ".text.partial-4194399-abcd"
    for folder in (dead, legacy, live, other_task):
        folder.mkdir()
        (folder / "big").write_bytes(b"x" * 1024)
    batch = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})

    def build(tar):
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            add_file(tar, f"cifar-10-batches-py/{name}", batch)

    archive = write_tar(tmp_path / "cifar.tar.gz", build)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    argv = ["data", "download", "image", "--url", archive.as_uri(), "--sha256", digest]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert not dead.exists() and not legacy.exists()
    assert f"removed {dead}, left by an unpack that was stopped" in out
    assert live.is_dir() and other_task.is_dir()
    assert (data / "image" / "cifar-10-batches-py" / "test_batch").is_file()
    assert [p.name for p in data.iterdir() if p.name.startswith(".image.partial")] == [live.name]
