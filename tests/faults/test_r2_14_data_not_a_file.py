"""Review 2, item 14: `--data-dir listops=DIR` whose `basic_val.tsv` is a directory, a FIFO or a
device. Before, the cell was `skipped` as "not found" and the run exited 0. Now the cell is an
`error` naming the path and what it is (not a regular file); the run exits 1. A FIFO is never
opened (that would block)."""

from __future__ import annotations

import json
import os

import pytest
from fault_helpers import run_args, stub_measurements

from bench.cli import main

ROW = "( ( ( [MAX 2 ) 9 ) ] )\t9"


def _data_dir(tmp_path, kind: str):
    folder = tmp_path / "listops"
    folder.mkdir()
    for name in ("basic_train.tsv", "basic_test.tsv"):
        (folder / name).write_text("Source\tTarget\n" + "\n".join([ROW] * 8) + "\n")
    val = folder / "basic_val.tsv"
    if kind == "directory":
        val.mkdir()
    elif kind == "FIFO":
        os.mkfifo(val)
    else:
        val.symlink_to("/dev/null")
    return folder, val


@pytest.mark.parametrize(
    ("kind", "what"),
    [("directory", "a directory"), ("FIFO", "a FIFO"), ("device", "a character device")],
)
def test_special_file_is_an_error_naming_it(tmp_path, capsys, monkeypatch, kind, what) -> None:
    stub_measurements(monkeypatch)
    folder, val = _data_dir(tmp_path, kind)
    argv = [*run_args(tmp_path), "--suite", "lra", "--tasks", "listops", "--no-progress"]
    argv += ["--models", "full_attention", "--data-dir", f"listops={folder}"]
    argv += ["--set", "train.steps=2", "--set", "data.n_train=8", "--set", "data.n_dev=8"]
    assert main(argv) == 1
    lines = (tmp_path / "runs" / "r" / "records.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    assert record["status"] == "error"
    assert f"listops: {val} is {what}, not a regular file" in record["reason"]
    assert "not found" not in record["reason"]
