"""Fault 10: an explicit --data-dir with an incomplete tree is an error naming the missing
folder. Before, a `--data-dir` holding an `aclImdb` without `test/neg` recorded `skipped`
(exit 0) and named nothing missing."""

from __future__ import annotations

from fault_helpers import run_args, stub_measurements

from bench.cli import main
from bench.records import read_records

LRA_TEXT = [
    *("--suite", "lra", "--scale", "tiny", "--models", "full_attention", "--tasks", "text"),
    *("--no-progress", "--set", "train.steps=2", "--set", "data.max_len=64"),
]


def test_incomplete_acl_imdb_tree_is_an_error_naming_the_missing_folder(
    tmp_path, monkeypatch
) -> None:
    stub_measurements(monkeypatch)
    given = tmp_path / "given"
    for split, label in (("train", "pos"), ("train", "neg"), ("test", "pos")):  # no test/neg
        folder = given / "aclImdb" / split / label
        folder.mkdir(parents=True)
        (folder / "0_7.txt").write_text("a review")
    argv = run_args(tmp_path, "r", *LRA_TEXT, "--data-dir", str(given))
    assert main(argv) == 1
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.status == "error"
    assert str(given / "aclImdb" / "test" / "neg") in record.reason
    assert str(given / "aclImdb" / "train" / "pos") not in record.reason


def test_data_dir_without_the_task_still_says_where_it_looked(tmp_path, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    given = tmp_path / "given"
    given.mkdir()
    assert main(run_args(tmp_path, "r", *LRA_TEXT, "--data-dir", str(given))) == 0
    (record,) = read_records(tmp_path / "runs" / "r")
    assert record.status == "skipped" and str(given) in record.reason
