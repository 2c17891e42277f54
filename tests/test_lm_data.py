"""The language-modelling data: segments and their next-token labels, the stdlib corpus (file
choice, split by path hash, hashes), and the WikiText-103 and enwik8 loaders on small files the
tests write, each checked against an independent computation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from suites.data import DataRequest, DataUnavailable
from suites.lm import corpora, stdlib_corpus
from suites.lm.segments import IGNORE_INDEX, LMInfo, segments
from suites.lra.files import DataIncomplete


def _request(tmp_path: Path, data_dir: Path | None, max_len: int = 4, cap: int = 1000):
    return DataRequest(max_len, cap, cap, cap, 0, tmp_path / "cache", data_dir=data_dir)


def test_segments_predict_every_token_but_the_first_exactly_once() -> None:
    stream = torch.arange(1, 11)  # 1..10
    split = segments(stream, max_len=4, max_segments=10)
    assert split.inputs[0].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 0, 0]]
    m = IGNORE_INDEX
    assert split.labels.tolist() == [[2, 3, 4, 5], [6, 7, 8, 9], [10, m, m, m]]
    assert split.lengths[0].tolist() == [4, 4, 1]
    scored = split.labels[split.labels != IGNORE_INDEX]
    assert sorted(scored.tolist()) == list(range(2, 11))


def test_segments_cap_takes_the_streams_start() -> None:
    split = segments(torch.arange(1, 101), max_len=8, max_segments=3)
    assert split.inputs[0].shape == (3, 8)
    assert split.inputs[0][2].tolist() == list(range(17, 25))
    assert split.labels[2].tolist() == list(range(18, 26))
    assert split.lengths[0].tolist() == [8, 8, 8]


def _tree(root: Path) -> dict[str, bytes]:
    """A fake stdlib: kept files, and files in excluded folders or too big."""
    files = {
        "a.py": b"import os\n",
        "pkg/__init__.py": b"",
        "pkg/mod.py": b"def f():\n    return 1\n",
        "z/zz.py": "x = 'é'\n".encode(),
        **{f"m{i}.py": f"v = {i}\n".encode() for i in range(60)},
    }
    excluded = {
        "site-packages/dep.py": b"dep\n",
        "test/test_x.py": b"t\n",
        "pkg/tests/t.py": b"t\n",
        "big.py": b"#" * (stdlib_corpus.MAX_FILE_BYTES + 1),
        "notes.txt": b"not python\n",
    }
    for rel, content in {**files, **excluded}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    return files


def test_stdlib_corpus_files_split_and_hashes(tmp_path) -> None:
    root = tmp_path / "lib"
    files = _tree(root)
    assert stdlib_corpus.corpus_files(root) == sorted(files)
    expected = {"train": [], "valid": [], "test": []}
    for rel in sorted(files):
        bucket = int(hashlib.sha256(rel.encode()).hexdigest()[:8], 16) % 100
        split = "train" if bucket < 90 else "valid" if bucket < 95 else "test"
        expected[split].append(rel)
    splits = stdlib_corpus.read_splits(root)
    for name, rels in expected.items():
        data = b"".join(files[r] for r in rels)
        digest = hashlib.sha256()
        for r in rels:
            digest.update(f"{r}\0{len(files[r])}\0".encode() + files[r])
        assert splits[name].data == data
        assert splits[name].files == len(rels)
        assert splits[name].sha256 == digest.hexdigest()


def test_stdlib_loader_reads_bytes_plus_one_and_records_the_corpus(tmp_path) -> None:
    root = tmp_path / "lib"
    _tree(root)
    data = stdlib_corpus.load_stdlib(_request(tmp_path, root, max_len=16))
    train = stdlib_corpus.read_splits(root)["train"].data
    first = data.train.inputs[0][0].tolist()
    assert first == [b + 1 for b in train[:16]]
    assert data.train.labels[0].tolist() == [b + 1 for b in train[1:17]]
    assert data.info.token_unit == "byte"
    fields = data.info.record_fields(data)
    assert fields["corpus"]["train"]["bytes"] == len(train)
    assert fields["scored_tokens"]["train"] == len(train) - 1
    assert "segments of 16 tokens" in fields["eval_protocol"]


def test_stdlib_corpus_of_this_python_is_split_about_90_5_5() -> None:
    rels = stdlib_corpus.corpus_files(stdlib_corpus.stdlib_root())
    assert len(rels) > 100
    counts = {s: 0 for s in stdlib_corpus.SPLITS}
    for rel in rels:
        counts[stdlib_corpus.split_of(rel)] += 1
    assert 0.8 < counts["train"] / len(rels) < 0.97
    assert counts["valid"] > 0 and counts["test"] > 0


WIKI = {
    "train": "the cat sat\n\n the <unk> cat\n",
    "valid": "the dog\n",
    "test": "cat sat sat\n",
}


def _write_wiki(folder: Path) -> None:
    folder.mkdir(parents=True)
    for split, text in WIKI.items():
        (folder / f"wiki.{split}.tokens").write_text(text, encoding="utf-8")


def test_wikitext_vocabulary_from_train_with_eos_per_line_and_unk(tmp_path) -> None:
    _write_wiki(tmp_path / "wt")
    data = corpora.load_wikitext103(_request(tmp_path, tmp_path / "wt", max_len=64))
    # train words: the x2, cat x2, sat, <unk>, <eos> x3 (one per line, the blank one too)
    vocab = {"<eos>": 1, "cat": 2, "the": 3, "<unk>": 4, "sat": 5}
    train = [3, 2, 5, 1, 1, 3, 4, 2, 1]
    assert data.train.inputs[0][0, : len(train) - 1].tolist() == train[:-1]
    assert data.train.labels[0, : len(train) - 1].tolist() == train[1:]
    valid = [3, vocab["<unk>"], 1]  # "dog" is not a train word
    assert data.dev.inputs[0][0, :2].tolist() == valid[:2]
    assert data.dev.labels[0, :2].tolist() == valid[1:]
    test = [2, 5, 5, 1]
    assert data.test.labels[0, :3].tolist() == test[1:]
    assert data.info.token_unit == "word"
    assert data.info.corpus["vocab_words"] == len(vocab)
    assert data.info.corpus["test"]["tokens"] == len(test)


def test_wikitext_absent_is_unavailable_and_partial_is_an_error(tmp_path) -> None:
    with pytest.raises(DataUnavailable, match="bench data download wikitext103"):
        corpora.load_wikitext103(_request(tmp_path, tmp_path / "nowhere"))
    _write_wiki(tmp_path / "wt")
    (tmp_path / "wt" / "wiki.test.tokens").unlink()
    with pytest.raises(DataIncomplete, match=r"wiki\.test\.tokens"):
        corpora.load_wikitext103(_request(tmp_path, tmp_path / "wt"))


def test_enwik8_last_two_twentieths_are_valid_and_test(tmp_path) -> None:
    folder = tmp_path / "e8"
    folder.mkdir()
    content = bytes(range(200))  # a 200-byte stand-in: 180 / 10 / 10
    (folder / "enwik8").write_bytes(content)
    data = corpora.load_enwik8(_request(tmp_path, folder, max_len=8))
    assert data.train.inputs[0][0].tolist() == [b + 1 for b in content[:8]]
    assert data.dev.inputs[0][0].tolist() == [b + 1 for b in content[180:188]]
    assert data.test.inputs[0][0].tolist() == [b + 1 for b in content[190:198]]
    assert int((data.test.labels != IGNORE_INDEX).sum()) == 9
    assert data.info.corpus["sha256"] == hashlib.sha256(content).hexdigest()
    assert data.info.corpus["official_size"] is False


def test_lm_info_refuses_an_unknown_unit() -> None:
    with pytest.raises(ValueError, match="token_unit"):
        LMInfo("char", "p", {})
