"""LRA file loaders (Text, Retrieval, Image) on small files written here in the official formats.

Expected tokens, grey levels and labels are computed independently (bytes + 1 by hand, grey
levels worked out from the TF formula), and splits are checked for overlap by content.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from suites.data import DataRequest, DataUnavailable
from suites.lra.image import load_image, read_batch, to_grey
from suites.lra.retrieval import load_retrieval
from suites.lra.text import load_text


def _request(tmp_path: Path, max_len: int, n: int = 1000, data_dir: Path | None = None):
    return DataRequest(max_len, n, n, n, seed=0, cache_dir=tmp_path / "cache", data_dir=data_dir)


def _texts(split: torch.Tensor, lengths: torch.Tensor) -> set[bytes]:
    return {bytes((row[:n] - 1).tolist()) for row, n in zip(split, lengths, strict=True)}


# ---------------------------------------------------------------------------------------------
# Text (aclImdb)


def write_imdb(root: Path, n_train: int = 20, n_test: int = 20) -> None:
    for split, n in (("train", n_train), ("test", n_test)):
        for label in ("pos", "neg"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(n // 2):
                text = f"{split} {label} review {i}: caf\u00e9 <br />".encode()
                (folder / f"{i}_{7 if label == 'pos' else 2}.txt").write_bytes(text)


def test_text_tokens_labels_and_truncation(tmp_path: Path) -> None:
    write_imdb(tmp_path / "data")
    data = load_text(_request(tmp_path, 64, data_dir=tmp_path / "data"))
    assert (len(data.train), len(data.dev), len(data.test)) == (18, 2, 20)
    text = "test pos review 0: caf\u00e9 <br />".encode()
    want = [b + 1 for b in text]  # byte ids 1..256; "é" is two UTF-8 bytes
    rows = data.test.inputs[0]
    match = [i for i in range(len(rows)) if rows[i, : len(want)].tolist() == want]
    assert len(match) == 1
    i = match[0]
    assert int(data.test.lengths[0][i]) == len(want) and int(rows[i, len(want)]) == 0
    assert int(data.test.labels[i]) == 1  # pos = 1
    # Truncation keeps the first max_len bytes.
    short = load_text(_request(tmp_path, 8, data_dir=tmp_path / "data"))
    assert (short.train.lengths[0] == 8).all()
    assert {bytes((r - 1).tolist()) for r in short.test.inputs[0]} == {b"test pos", b"test neg"}


def test_text_dev_comes_from_train_and_caps(tmp_path: Path) -> None:
    write_imdb(tmp_path / "data")
    data = load_text(_request(tmp_path, 64, data_dir=tmp_path / "data"))
    train = _texts(data.train.inputs[0], data.train.lengths[0])
    dev = _texts(data.dev.inputs[0], data.dev.lengths[0])
    test = _texts(data.test.inputs[0], data.test.lengths[0])
    assert all(t.startswith(b"train") for t in dev) and not dev & train and not dev & test
    for split, texts in ((data.train, train), (data.test, test)):
        labels = [1 if b" pos " in t else 0 for t in sorted(texts)]
        assert sorted(split.labels.tolist()) == sorted(labels)
    capped = load_text(_request(tmp_path, 64, n=8, data_dir=tmp_path / "data"))
    assert (len(capped.train), len(capped.dev), len(capped.test)) == (8, 2, 8)
    # The files are ordered by class: a prefix would hold negatives only.
    assert set(capped.test.labels.tolist()) == {0, 1}


def test_text_found_in_download_dir(tmp_path: Path) -> None:
    write_imdb(tmp_path / "cache" / "data" / "text")
    assert len(load_text(_request(tmp_path, 32)).test) == 20


def test_text_missing_says_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable) as err:
        load_text(_request(tmp_path, 32, data_dir=tmp_path / "nowhere"))
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "aclImdb") in message
    assert str(tmp_path / "cache" / "data" / "text") in message
    assert "bench data download text" in message


# ---------------------------------------------------------------------------------------------
# Retrieval (AAN TSVs)


def write_aan(folder: Path, rows: dict[str, list[tuple[str, str, str]]]) -> None:
    folder.mkdir(parents=True)
    for split, name in (("train", "train"), ("dev", "eval"), ("test", "test")):
        lines = [
            f"{label}\taan/{split}{i}a\taan/{split}{i}b\t{a}\t{b}\n"
            for i, (label, a, b) in enumerate(rows[split])
        ]
        (folder / f"new_aan_pairs.{name}.tsv").write_text("".join(lines), encoding="utf-8")


def test_retrieval_two_inputs(tmp_path: Path) -> None:
    rows = {
        "train": [("1.0", "abc", "de"), ("0.0", "x" * 20, "y")],
        "dev": [("0.0", "dev a", "dev b")],
        "test": [("1.0", "t1", "t2"), ("0.0", "t3", "t4"), ("1.0", "t5", "t6")],
    }
    write_aan(tmp_path / "data" / "lra_release" / "tsv_data", rows)
    data = load_retrieval(_request(tmp_path, 8, data_dir=tmp_path / "data"))
    assert [len(data.train), len(data.dev), len(data.test)] == [2, 1, 3]
    first, second = data.train.inputs
    assert first.shape == second.shape == (2, 8)
    assert first[0, :4].tolist() == [98, 99, 100, 0]  # "abc" -> 97+1, 98+1, 99+1, padding
    assert second[0, :3].tolist() == [101, 102, 0]
    assert data.train.lengths[0].tolist() == [3, 8] and data.train.lengths[1].tolist() == [2, 1]
    assert data.train.labels.tolist() == [1, 0] and data.test.labels.tolist() == [1, 0, 1]
    capped = load_retrieval(_request(tmp_path, 8, n=1, data_dir=tmp_path / "data"))
    assert capped.test.labels.tolist() == [1]


def test_retrieval_malformed_row_names_line(tmp_path: Path) -> None:
    write_aan(tmp_path / "data", {s: [("1.0", "a", "b")] for s in ("train", "dev", "test")})
    with (tmp_path / "data" / "new_aan_pairs.test.tsv").open("a") as f:
        f.write("1.0\tonly\tthree\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs\.test\.tsv:2: expected 5"):
        load_retrieval(_request(tmp_path, 8, data_dir=tmp_path / "data"))


def test_retrieval_missing(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable, match="bench data download retrieval"):
        load_retrieval(_request(tmp_path, 8))


# ---------------------------------------------------------------------------------------------
# Image (CIFAR-10 python batches)

# (R, G, B) -> grey, worked out by hand from trunc(255.5 * (0.2989 R + 0.587 G + 0.114 B) / 255).
# (0, 255, 0) -> 149.98 tells truncation from rounding; white -> 255.47 tells 255.5 from 255.
GREY_CASES = [
    ((0, 0, 0), 0),
    ((255, 0, 0), 76),
    ((255, 255, 255), 255),
    ((100, 150, 200), 141),
    ((0, 255, 0), 149),
]


def write_cifar(folder: Path, per_batch: int = 10) -> None:
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        data = np.zeros((per_batch, 3072), dtype=np.uint8)
        for i in range(per_batch):
            (r, g, bl), _ = GREY_CASES[i % len(GREY_CASES)]
            data[i, :1024], data[i, 1024:2048], data[i, 2048:] = r, g, bl
            data[i, 0] = b * per_batch + i  # red of pixel 0 tells the image apart
        labels = [(b + i) % 10 for i in range(per_batch)]
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)


def test_grey_levels_match_tf_formula() -> None:
    rgb = np.array([c for c, _ in GREY_CASES], dtype=np.uint8).reshape(-1, 3, 1, 1)
    assert to_grey(rgb).reshape(-1).tolist() == [g for _, g in GREY_CASES]


def test_image_splits_shapes_labels(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data" / "cifar-10-batches-py")
    data = load_image(_request(tmp_path, 1024, data_dir=tmp_path / "data"))
    assert (len(data.train), len(data.dev), len(data.test)) == (45, 5, 10)
    tokens = data.train.inputs[0]
    assert tokens.shape == (45, 1024) and (data.train.lengths[0] == 1024).all()
    assert tokens[1, 1:].unique().tolist() == [76]  # image 1 of batch 1 is (255, 0, 0)
    assert data.train.labels[:3].tolist() == [0, 1, 2]
    # dev = the last 10 % of the training batches (batch 5, images 5..9), never test_batch.
    assert data.dev.labels.tolist() == [(4 + i) % 10 for i in range(5, 10)]
    assert data.test.labels.tolist() == [(5 + i) % 10 for i in range(10)]
    capped = load_image(_request(tmp_path, 1024, n=3, data_dir=tmp_path / "data"))
    assert (len(capped.train), len(capped.dev), len(capped.test)) == (3, 3, 3)


def test_cifar_pickle_with_code_is_refused(tmp_path: Path) -> None:
    class Exploit:
        def __reduce__(self):
            return (os.getcwd, ())

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        read_batch(path)


def test_image_missing(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable, match="bench data download image"):
        load_image(_request(tmp_path, 1024))
