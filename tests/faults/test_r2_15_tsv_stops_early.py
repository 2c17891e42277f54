"""Review 2, item 15: the ListOps TSV loader stops reading once it has the rows it keeps. Before,
it parsed every row of each file and then kept the first n_train: 2M rows (114 MB) took 1.25 GB
of memory for 200 rows used. The rows kept are the same as before: the first n non-blank rows
after the header, in file order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from suites.data import DataRequest
from suites.lra.listops import tsv
from suites.lra.listops.generate import TOKEN_IDS, encode_split
from suites.lra.listops.tsv import load_tsv, read_listops_tsv

OPERATORS = ("[MAX", "[MIN", "[MED", "[SM")


def _rows(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """n (Source, Target) rows as LRA writes them: parentheses around each operator node."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        args = " ".join(str(rng.randrange(10)) for _ in range(rng.randrange(1, 5)))
        rows.append((f"( ( {rng.choice(OPERATORS)} {args} ) ] )", rng.randrange(10)))
    return rows


def _write(path: Path, rows, blank_every: int = 0, tail: str = "") -> None:
    """Header, rows (a blank line after every `blank_every`-th), then `tail`; CRLF as LRA."""
    lines = ["Source\tTarget"]
    for i, (src, label) in enumerate(rows, start=1):
        lines.append(f"{src}\t{label}")
        if blank_every and i % blank_every == 0:
            lines.append("")
    path.write_bytes(("\r\n".join(lines) + "\r\n" + tail).encode())


def _reference(path: Path) -> list[tuple[list[str], int]]:
    """The whole file parsed independently: every non-blank row after the header."""
    lines = path.read_bytes().decode("utf-8").splitlines()[1:]
    out = []
    for line in lines:
        if line.strip():
            source, target = line.split("\t")
            out.append(([t for t in source.split() if t not in ("(", ")")], int(target)))
    return out


@pytest.mark.parametrize("limit", [0, 1, 7, 49, 50, 80])
def test_first_rows_are_those_of_the_full_parse(tmp_path, limit) -> None:
    path = tmp_path / "basic_train.tsv"
    _write(path, _rows(50), blank_every=6)
    assert read_listops_tsv(path, limit=limit) == _reference(path)[:limit]
    assert read_listops_tsv(path) == _reference(path)  # no limit: the whole file


_REAL_OPEN = Path.open


class _CountingFile:
    """A binary file whose lines are counted; reading past `most` lines fails the test."""

    def __init__(self, path: Path, most: int) -> None:
        self._f = _REAL_OPEN(path, "rb")
        self.most, self.read = most, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()

    def __iter__(self):
        for line in self._f:
            self.read += 1
            if self.read > self.most:
                raise AssertionError(f"read line {self.read}, past the {self.most} needed")
            yield line


def test_a_huge_file_is_not_read_past_the_rows_kept(tmp_path, monkeypatch) -> None:
    names = ("basic_train.tsv", "basic_val.tsv", "basic_test.tsv")
    for seed, name in enumerate(names):
        _write(tmp_path / name, _rows(5000, seed), blank_every=100)
    opened: dict[str, _CountingFile] = {}
    most = {"basic_train.tsv": 1 + 200 + 2, "basic_val.tsv": 1 + 30, "basic_test.tsv": 1 + 30}

    def open_counted(self, mode="r", *args, **kwargs):
        assert mode == "rb"
        opened[self.name] = _CountingFile(self, most=most[self.name])  # header, rows, blanks
        return opened[self.name]

    monkeypatch.setattr(tsv.Path, "open", open_counted)
    request = DataRequest(
        max_len=32, n_train=200, n_dev=30, n_test=30, seed=0, cache_dir=tmp_path / "c"
    )
    data = load_tsv(request, tmp_path)
    monkeypatch.undo()
    assert sorted(opened) == sorted(names)
    assert (len(data.train), len(data.dev), len(data.test)) == (200, 30, 30)
    first = encode_split(_reference(tmp_path / "basic_train.tsv")[:200], 32)
    assert torch.equal(data.train.inputs[0], first.inputs[0])
    assert torch.equal(data.train.labels, first.labels)


def test_load_tsv_never_parses_rows_past_the_split_size(tmp_path) -> None:
    """Rows after the first n of each split are not parsed: a malformed one there is not seen
    (before, it failed the load), and the splits equal the first rows of a full parse."""
    rows = _rows(3000, seed=1)
    names = {"train": "basic_train.tsv", "dev": "basic_val.tsv", "test": "basic_test.tsv"}
    for i, name in enumerate(names.values()):
        _write(tmp_path / name, rows[i * 1000 : (i + 1) * 1000], tail="( [MEAN 1 ] )\tx\r\n")
    request = DataRequest(
        max_len=32, n_train=20, n_dev=5, n_test=5, seed=0, cache_dir=tmp_path / "c"
    )
    data = load_tsv(request, tmp_path)
    for split, n in (("train", 20), ("dev", 5), ("test", 5)):
        expected = encode_split(_reference_rows(rows, split)[:n], 32)
        got = getattr(data, split)
        assert torch.equal(got.inputs[0], expected.inputs[0])
        assert torch.equal(got.labels, expected.labels)


def _reference_rows(rows, split: str) -> list[tuple[list[str], int]]:
    start = {"train": 0, "dev": 1000, "test": 2000}[split]
    out = []
    for src, label in rows[start : start + 1000]:
        tokens = [t for t in src.split() if t not in ("(", ")")]
        assert all(t in TOKEN_IDS for t in tokens)
        out.append((tokens, label))
    return out
