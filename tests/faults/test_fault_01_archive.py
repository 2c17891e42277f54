"""Fault 1: a crafted archive given to `bench data download` must never write outside its
folder (whatever the stdlib tar filter lets through: the CVE-2025-4517 symlink chain passes it on
Python 3.11.7), and a refused archive leaves no partial unpack behind. Fault 15 (`bench data
status` shows partial and unverified data) is tested here too, with the same archives."""

from __future__ import annotations

import hashlib
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hostile_archives import add_dir, add_file, add_link, symlink_chain, write_tar

from bench.cli import main

BATCHES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]


def _batch() -> bytes:
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    return pickle.dumps({b"data": data, b"labels": [0, 1]})


def _cifar_members(tar: tarfile.TarFile, names=BATCHES) -> None:
    for name in names:
        add_file(tar, f"cifar-10-batches-py/{name}", _batch())


def _download(tmp_path: Path, archive: Path, capsys) -> tuple[int, str]:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    argv = ["data", "download", "image", "--url", archive.as_uri(), "--sha256", digest]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


def _status(tmp_path: Path, capsys, *extra: str) -> dict[str, str]:
    assert main(["data", "status", "--cache-dir", str(tmp_path / "cache"), *extra]) == 0
    rows = capsys.readouterr().out.splitlines()
    return {line.split()[0]: line for line in rows}


def _outside_build(kind: str, outside: Path):
    """Archives whose one hostile member comes after a complete set of valid CIFAR files."""

    def build(tar: tarfile.TarFile) -> None:
        _cifar_members(tar)
        if kind == "dotdot":
            add_file(tar, "../../../outside/pwned")
        elif kind == "absolute":
            add_file(tar, str(outside / "pwned"))
        elif kind == "symlink_out":
            add_link(tar, "cifar-10-batches-py/out", str(outside))
            add_file(tar, "cifar-10-batches-py/out/pwned")
        elif kind == "relative_symlink_out":
            add_link(tar, "up", "../../../outside")
            add_file(tar, "up/pwned")
        elif kind == "hardlink_out":
            add_link(tar, "cifar-10-batches-py/hl", str(outside / "target"), tarfile.LNKTYPE)
        elif kind == "device":
            info = tarfile.TarInfo("cifar-10-batches-py/dev")
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
        elif kind == "fifo":
            info = tarfile.TarInfo("cifar-10-batches-py/fifo")
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        elif kind == "symlink_chain":
            symlink_chain(tar, levels_up=3, outside_name="outside")

    return build


KINDS = [
    "dotdot",
    "absolute",
    "symlink_out",
    "relative_symlink_out",
    "hardlink_out",
    "device",
    "fifo",
    "symlink_chain",
]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_archive_is_refused_whole_and_writes_nothing_outside(
    tmp_path, capsys, kind
) -> None:
    outside = tmp_path / "outside"  # three levels above cache/data/image
    outside.mkdir()
    (outside / "target").write_bytes(b"do not touch\n")
    archive = write_tar(tmp_path / "hostile.tar.gz", _outside_build(kind, outside))

    code, err = _download(tmp_path, archive, capsys)

    assert sorted(p.name for p in outside.iterdir()) == ["target"], "wrote outside the folder"
    assert (outside / "target").read_bytes() == b"do not touch\n"
    assert code == 2 and "archive refused, nothing was unpacked" in err, err
    data = tmp_path / "cache" / "data"
    assert not (data / "image").exists(), "a refused archive left a partial unpack in place"
    assert list(data.glob(".image*")) == [], "its temporary folder was not removed"
    assert "absent" in _status(tmp_path, capsys)["image"]


def test_complete_archive_is_installed_and_status_says_verified(tmp_path, capsys) -> None:
    def build(tar):
        add_dir(tar, "./")
        _cifar_members(tar)

    archive = write_tar(tmp_path / "cifar.tar.gz", build)
    code, _ = _download(tmp_path, archive, capsys)
    assert code == 0
    ready = tmp_path / "cache" / "data" / "image" / "cifar-10-batches-py"
    assert sorted(p.name for p in ready.iterdir()) == sorted(BATCHES)
    row = _status(tmp_path, capsys)["image"]
    assert row.split()[1] == "present" and str(ready) in row


def test_incomplete_archive_is_not_installed(tmp_path, capsys) -> None:
    archive = write_tar(tmp_path / "cifar.tar.gz", lambda t: _cifar_members(t, BATCHES[:-1]))
    code, err = _download(tmp_path, archive, capsys)
    assert code == 2 and "test_batch" in err
    assert not (tmp_path / "cache" / "data" / "image").exists()


def test_status_shows_partial_and_unverified_data(tmp_path, capsys) -> None:
    """Fault 15: a partial unpack (files missing, or an unpack cut short) is `partial`, data
    not from a verified download is `unverified`; before, both read `present` or `absent`."""
    image = tmp_path / "cache" / "data" / "image" / "cifar-10-batches-py"
    image.mkdir(parents=True)
    for name in BATCHES[:-1]:  # test_batch missing
        (image / name).write_bytes(_batch())
    row = _status(tmp_path, capsys)["image"]
    assert row.split()[1] == "partial" and str(image / "test_batch") in row

    (image / "test_batch").write_bytes(_batch())  # complete, but never verified by a download
    row = _status(tmp_path, capsys)["image"]
    assert row.split()[1] == "unverified"

    (image.parent).rename(tmp_path / "cache" / "data" / ".image.partial-abc")  # a killed unpack
    row = _status(tmp_path, capsys)["image"]
    assert row.split()[1] == "partial" and ".image.partial-abc" in row

    given = tmp_path / "given" / "cifar-10-batches-py"
    given.mkdir(parents=True)
    for name in BATCHES:
        (given / name).write_bytes(_batch())
    row = _status(tmp_path, capsys, "--data-dir", str(given.parent))["image"]
    assert row.split()[1] == "unverified" and str(given) in row


def test_tar_buffer_helper_builds_readable_archives(tmp_path) -> None:
    """The helper itself: the chain archive holds the members the exploit needs."""
    archive = write_tar(tmp_path / "chain.tar", lambda t: symlink_chain(t, 3, "o"), mode="w")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[-2:] == ["escape", "escape/pwned"] and len(names) == 35
