"""`bench data download` end to end from file:// fixture archives (never the network), the
checksum checks, and `bench data status`."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from bench.cli import main
from suites.data import DataRequest
from suites.lra.download import ARCHIVES
from suites.lra.text import load_text


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def imdb_archive(path: Path) -> str:
    """An aclImdb_v1.tar.gz look-alike (with an unsup/ folder the download skips); its SHA-256."""
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for label in ("pos", "neg"):
                for i in range(3):
                    _add(tar, f"aclImdb/{split}/{label}/{i}_5.txt", f"{split} {label} {i}".encode())
        _add(tar, "aclImdb/train/unsup/0_0.txt", b"unlabelled")
        _add(tar, "aclImdb/README", b"readme")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_text_end_to_end(tmp_path: Path, capsys) -> None:
    archive = tmp_path / "aclImdb_v1.tar.gz"
    digest = imdb_archive(archive)
    cache = tmp_path / "cache"
    argv = ["data", "download", "text", "--url", archive.as_uri(), "--sha256", digest]
    assert main([*argv, "--cache-dir", str(cache)]) == 0
    unpacked = cache / "data" / "text" / "aclImdb"
    assert sorted(p.name for p in unpacked.iterdir()) == ["test", "train"]  # members filtered
    assert not (unpacked / "train" / "unsup").exists()
    assert not (cache / "downloads" / "aclImdb_v1.tar.gz").exists()  # archive removed
    data = load_text(DataRequest(16, 100, 100, 100, seed=0, cache_dir=cache))
    assert (len(data.train) + len(data.dev), len(data.test)) == (6, 6)

    assert main(["data", "status", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("text "))
    size = sum(p.stat().st_size for p in unpacked.rglob("*") if p.is_file())
    assert "present" in line and f"{size} bytes" in line and str(unpacked) in line
    image = next(row for row in out.splitlines() if row.startswith("image "))
    assert "absent" in image and "bench data download image" in image


def test_checksum_mismatch_is_refused(tmp_path: Path, capsys) -> None:
    archive = tmp_path / "aclImdb_v1.tar.gz"
    imdb_archive(archive)
    cache = tmp_path / "cache"
    argv = ["data", "download", "text", "--url", archive.as_uri(), "--cache-dir", str(cache)]
    # Without --sha256 the pinned digest of the real archive applies, which the fixture lacks.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and ARCHIVES["text"].sha256 in err
    assert not (cache / "data" / "text").exists()
    assert not list((cache / "downloads").iterdir())  # no partial file left behind
    assert main([*argv, "--sha256", "0" * 64]) == 2


def test_release_without_known_digest_requires_sha256(tmp_path: Path, capsys) -> None:
    assert ARCHIVES["retrieval"].sha256 is None
    assert main(["data", "download", "retrieval", "--cache-dir", str(tmp_path)]) == 2
    assert "pass --sha256" in capsys.readouterr().err


def test_retrieval_members_from_release(tmp_path: Path) -> None:
    release = tmp_path / "lra_release.gz"
    with tarfile.open(release, "w:gz") as tar:
        for name in ("train", "eval", "test"):
            _add(tar, f"lra_release/tsv_data/new_aan_pairs.{name}.tsv", b"1.0\ta\tb\tx\ty\n")
        _add(tar, "lra_release/listops-1000/basic_train.tsv", b"Source\tTarget\n")
        _add(tar, "lra_release/pathfinder32/big.bin", b"\0" * 1000)
    digest = hashlib.sha256(release.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    argv = ["data", "download", "retrieval", "--url", release.as_uri(), "--sha256", digest]
    assert main([*argv, "--cache-dir", str(cache), "--keep-archive"]) == 0
    got = sorted(p.name for p in (cache / "data" / "retrieval").rglob("*") if p.is_file())
    assert got == [f"new_aan_pairs.{n}.tsv" for n in ("eval", "test", "train")]
    assert (cache / "downloads" / "lra_release.gz").is_file()


@pytest.mark.parametrize("task", ["pathfinder", "nonsense"])
def test_download_unknown_task(tmp_path: Path, task: str, capsys) -> None:
    assert main(["data", "download", task, "--cache-dir", str(tmp_path)]) == 2
    assert "downloadable: text, image, retrieval, listops" in capsys.readouterr().err


def test_listops_official_files_from_release(tmp_path: Path, capsys) -> None:
    release = tmp_path / "lra_release.gz"
    with tarfile.open(release, "w:gz") as tar:
        for name in ("train", "val", "test"):
            body = b"Source\tTarget\n( ( [MAX 2 ) 9 ) ] )\t9\n"
            _add(tar, f"lra_release/lra_release/listops-1000/basic_{name}.tsv", body)
    digest = hashlib.sha256(release.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    argv = ["data", "download", "listops", "--url", release.as_uri(), "--sha256", digest]
    assert main([*argv, "--cache-dir", str(cache)]) == 0
    ready = cache / "data" / "listops" / "lra_release" / "lra_release" / "listops-1000"
    assert f"bench run --data-dir {ready}" in capsys.readouterr().out
    assert main(["data", "status", "--cache-dir", str(cache)]) == 0
    line = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("listops (off"))
    assert "present" in line and str(ready) in line


def test_an_unreachable_source_is_one_line_naming_the_url_and_the_manual_way(
    tmp_path: Path, capsys
) -> None:
    # An unresolvable host, as offline: urllib raises URLError (an OSError), never reaching
    # the network. A missing file:// path fails the same way.
    for url in ("http://uoe-bench.invalid/aclImdb_v1.tar.gz", (tmp_path / "none.tgz").as_uri()):
        argv = ["data", "download", "text", "--url", url, "--cache-dir", str(tmp_path)]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert url in err[0] and "--url file:///PATH/TO/aclImdb_v1.tar.gz" in err[0]


def test_a_download_shows_byte_progress(tmp_path: Path, capsys) -> None:
    archive = tmp_path / "aclImdb_v1.tar.gz"
    digest = imdb_archive(archive)
    argv = ["data", "download", "text", "--url", archive.as_uri(), "--sha256", digest]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    err = capsys.readouterr().err
    assert "aclImdb_v1.tar.gz" in err and "100%" in err, err
