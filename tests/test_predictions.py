"""Per-example test predictions in records: the compact field round-trips exactly, the split hash
names the examples (not their padding), and a real run's trained cells carry predictions whose
accuracy is the record's accuracy while an efficiency cell carries none."""

from __future__ import annotations

import base64
import hashlib

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.predictions import decode, encode
from bench.records import read_records
from suites.data import Split, pad_sequences


def test_encode_decode_round_trip_uint8() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 1001)
    predicted = rng.integers(0, 10, 1001)
    field = encode("ab" * 32, predicted, labels)
    assert field["dtype"] == "uint8" and field["n"] == 1001
    assert len(base64.b64decode(field["predicted"])) == 1001  # one byte a class
    assert len(base64.b64decode(field["correct"])) == 126  # ceil(1001 / 8) bytes of bits
    back = decode(field)
    assert back.split_sha256 == "ab" * 32
    np.testing.assert_array_equal(back.predicted, predicted)
    np.testing.assert_array_equal(back.correct, predicted == labels)
    assert back.accuracy == pytest.approx(float(np.mean(predicted == labels)))


def test_encode_decode_uint16_little_endian() -> None:
    predicted = np.array([0, 300, 65535, 7])
    field = encode("h", predicted, np.array([0, 300, 1, 8]))
    assert field["dtype"] == "uint16"
    assert base64.b64decode(field["predicted"])[:4] == bytes([0, 0, 0x2C, 0x01])  # 300 = 0x012C
    back = decode(field)
    np.testing.assert_array_equal(back.predicted, predicted)
    np.testing.assert_array_equal(back.correct, [True, True, False, False])


def test_a_field_that_does_not_add_up_is_refused() -> None:
    field = encode("h", np.array([1, 2, 3]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="n=4"):
        decode({**field, "n": 4})


def _split(sequences: list[list[int]], labels: list[int], max_len: int) -> Split:
    tokens, lengths = pad_sequences(sequences, max_len)
    return Split((tokens,), (lengths,), torch.tensor(labels))


def test_split_hash_names_the_examples_not_the_padding() -> None:
    seqs, labels = [[3, 4, 5], [6, 7]], [1, 0]
    short, long = _split(seqs, labels, 4), _split(seqs, labels, 16)
    assert short.content_sha256 == long.content_sha256
    assert _split(seqs, [0, 0], 4).content_sha256 != short.content_sha256  # labels count
    assert _split([[3, 4, 5], [6, 8]], labels, 4).content_sha256 != short.content_sha256
    assert _split(seqs[::-1], labels[::-1], 4).content_sha256 != short.content_sha256  # order
    # independently: the documented byte layout, hashed by hand
    digest = hashlib.sha256(b"2 examples, 1 inputs")
    digest.update(np.array([3, 2], "<i8").tobytes())
    digest.update(np.array([[3, 4, 5], [6, 7, 0]], "<i8").tobytes())
    digest.update(np.array([1, 0], "<i8").tobytes())
    assert short.content_sha256 == digest.hexdigest()


def test_trained_cells_carry_predictions_efficiency_cells_none(tmp_path) -> None:
    quick = [
        *("--set", "train.steps=2", "--set", "train.eval_every=2", "--set", "data.n_train=64"),
        *("--set", "data.n_dev=16", "--set", "data.n_test=40", "--set", "measure.warmup=0"),
        *("--set", "measure.min_count=1", "--set", "measure.min_time_s=0"),
    ]
    common = ["--out", str(tmp_path), "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    smoke = ["--suite", "smoke", "--tasks", "first", "--models", "full_attention,switch"]
    assert main(["run", *smoke, "--seeds", "0,1", "--run-id", "s", *common, *quick]) == 0
    records = read_records(tmp_path / "s")
    assert len(records) == 4
    hashes = set()
    for record in records:
        stored = decode(record.test_predictions)
        assert stored.n == record.data["n_test"] == 40
        assert stored.accuracy == pytest.approx(record.metrics["accuracy"])
        hashes.add(stored.split_sha256)
    assert len(hashes) == 1  # every cell of the task saw the same test split
    efficiency = ["--suite", "lra_efficiency", "--tasks", "1k", "--models", "full_attention"]
    assert main(["run", *efficiency, "--run-id", "e", *common, *quick[8:]]) == 0
    (cell,) = read_records(tmp_path / "e")
    assert cell.status == "ok" and cell.test_predictions == {}
