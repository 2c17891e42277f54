"""`bench data download wikitext103 | enwik8` end to end from file:// zips the tests write
(never the network): the checksum is required and checked, only the named members are unpacked,
the loader then finds the files, `bench data status` reports them verified, and an unreachable
source is one line naming the URL and the manual way."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from bench.cli import main
from suites.data import DataRequest
from suites.lm.corpora import load_enwik8, load_wikitext103


def _zip(path: Path, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


WIKI = {f"wikitext-103/wiki.{s}.tokens": f" = {s} = \n a b c \n".encode() for s in
        ("train", "valid", "test")}  # fmt: skip


def test_wikitext103_download_end_to_end(tmp_path: Path, capsys) -> None:
    digest = _zip(tmp_path / "w.zip", {**WIKI, "wikitext-103/README": b"not needed"})
    cache = tmp_path / "cache"
    argv = ["data", "download", "wikitext103", "--url", (tmp_path / "w.zip").as_uri(),
            "--sha256", digest, "--cache-dir", str(cache)]  # fmt: skip
    assert main(argv) == 0
    folder = cache / "data" / "wikitext103"
    assert sorted(p.name for p in folder.iterdir()) == [
        "wiki.test.tokens", "wiki.train.tokens", "wiki.valid.tokens"
    ]  # fmt: skip
    assert (folder / "wiki.test.tokens").read_bytes() == WIKI["wikitext-103/wiki.test.tokens"]
    assert not (cache / "downloads" / "wikitext-103-v1.zip").exists()  # not kept by default
    data = load_wikitext103(DataRequest(8, 10, 10, 10, 0, cache_dir=cache))
    assert data.info.corpus["train"]["tokens"] == 8  # "= train =", "a b c": 3 words + <eos> each
    capsys.readouterr()
    assert main(["data", "status", "--cache-dir", str(cache)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("wikitext103"))
    assert line.split()[1] == "present"


def test_enwik8_download_and_a_wrong_digest_installs_nothing(tmp_path: Path, capsys) -> None:
    content = bytes(range(256)) * 4
    digest = _zip(tmp_path / "e.zip", {"enwik8": content})
    cache = tmp_path / "cache"
    url = (tmp_path / "e.zip").as_uri()
    wrong = ["data", "download", "enwik8", "--url", url, "--sha256", "0" * 64, "--cache-dir",
             str(cache)]  # fmt: skip
    assert main(wrong) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err
    assert not (cache / "data" / "enwik8").exists()
    assert main(["data", "download", "enwik8", "--url", url, "--sha256", digest, "--cache-dir",
                 str(cache)]) == 0  # fmt: skip
    data = load_enwik8(DataRequest(16, 100, 100, 100, 0, cache_dir=cache))
    assert data.info.corpus["sha256"] == hashlib.sha256(content).hexdigest()


def test_a_digest_is_required_and_missing_members_are_named(tmp_path: Path, capsys) -> None:
    assert main(["data", "download", "enwik8", "--cache-dir", str(tmp_path)]) == 2
    assert "--sha256" in capsys.readouterr().err
    digest = _zip(tmp_path / "w.zip", {"wikitext-103/wiki.train.tokens": b"a\n"})
    argv = ["data", "download", "wikitext103", "--url", (tmp_path / "w.zip").as_uri(),
            "--sha256", digest, "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "wikitext-103/wiki.test.tokens" in err and "incomplete" in err
    assert not (tmp_path / "c" / "data" / "wikitext103").exists()


def test_an_unreachable_source_names_the_url_and_the_manual_way(tmp_path: Path, capsys) -> None:
    url = "http://uoe-bench.invalid/enwik8.zip"
    argv = ["data", "download", "enwik8", "--url", url, "--sha256", "0" * 64, "--cache-dir",
            str(tmp_path)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and url in err[0] and "--url file:///PATH/TO/enwik8.zip" in err[0]
