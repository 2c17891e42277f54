"""Fault 11: data errors name the file and the line. Before: a non-UTF-8 ListOps TSV gave
`UnicodeDecodeError ... position 118`, empty AAN TSVs `cannot draw batches from an empty training
split`, empty or truncated CIFAR batches `EOFError`, and a non-UTF-8 records.jsonl a
UnicodeDecodeError in `bench report`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bench.cli import main
from bench.manifest import Manifest, write_manifest
from bench.records import Record, RecordStore
from bench.run_plan import RunPlan
from suites.lra.image import read_batch
from suites.lra.listops.tsv import read_listops_tsv
from suites.lra.retrieval import read_aan_tsv


def test_non_utf8_listops_tsv_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "basic_train.tsv"
    path.write_bytes(b"Source\tTarget\n( [MAX 2 9 )\t9\n( [MIN 1 \xe9 3 )\t1\n")
    with pytest.raises(ValueError, match=rf"{path}:3: not UTF-8"):
        read_listops_tsv(path)


def test_empty_aan_tsv_names_the_file(tmp_path) -> None:
    path = tmp_path / "new_aan_pairs.train.tsv"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"{path}: no examples"):
        read_aan_tsv(path, limit=10, max_len=32)


@pytest.mark.parametrize("cut", ["empty", "truncated"])
def test_empty_or_truncated_cifar_batch_names_the_file(tmp_path, cut) -> None:
    whole = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"" if cut == "empty" else whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=rf"{path}: "):
        read_batch(path)


def test_report_names_a_non_utf8_records_line(tmp_path, capsys, caplog) -> None:
    store = RecordStore(tmp_path)
    ok = dict(run_id="r", suite="smoke", task="majority", model="m", scale="tiny", status="ok")
    store.append(Record(**ok, seed=0, metrics={"accuracy": 0.5}))
    with open(store.path, "ab") as f:
        f.write(b'{"run_id": "\xff\xfe"}\n')
    plan = RunPlan("smoke", "tiny", ("m",), ("majority",), (0,))
    write_manifest(tmp_path, Manifest("r", "now", plan))
    assert main(["report", str(tmp_path), "--no-plots"]) == 0
    assert f"{store.path}:2: garbled record (not UTF-8" in caplog.text
