"""The smoke suite: seeded generators whose labels match a plain-Python re-derivation, and a
tiny end-to-end run that learns well above the majority-class rate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from bench import registries
from bench.cli import main
from bench.records import read_records
from suites.data import DataRequest


def _request(seed: int = 0, n: int = 200, max_len: int = 16) -> DataRequest:
    return DataRequest(
        max_len=max_len, n_train=n, n_dev=n // 4, n_test=n // 4, seed=seed, cache_dir=Path("/x")
    )


def _load(task: str, **kw):
    return registries.TASKS.get(f"smoke/{task}").load(_request(**kw))


def _rows(split, which: int = 0) -> list[list[int]]:
    tokens, lengths = split.inputs[which], split.lengths[which]
    return [tokens[i, : int(lengths[i])].tolist() for i in range(len(split))]


def test_suite_is_registered_with_its_tasks_and_scales() -> None:
    suite = registries.SUITES.get("smoke")
    assert suite.tasks == ("majority", "first", "match")
    assert set(suite.scales) == {"tiny", "small"}


@pytest.mark.parametrize("task", ["majority", "first", "match"])
def test_generation_is_seeded_and_padding_follows_lengths(task: str) -> None:
    a, b, c = _load(task), _load(task), _load(task, seed=1)
    for x, y in zip(a.train.inputs, b.train.inputs, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a.train.inputs[0], c.train.inputs[0])
    for tokens, lengths in zip(a.test.inputs, a.test.lengths, strict=True):
        for i in range(tokens.shape[0]):
            n = int(lengths[i])
            assert (tokens[i, :n] > 0).all() and (tokens[i, n:] == 0).all()


def test_majority_labels_are_the_more_frequent_symbol() -> None:
    split = _load("majority").train
    for row, label in zip(_rows(split), split.labels.tolist(), strict=True):
        assert len(row) % 2 == 1, "odd lengths: no ties"
        count = Counter(row)
        assert label == (1 if count[2] > count[1] else 0)


def test_first_labels_are_the_first_symbol() -> None:
    split = _load("first").train
    assert [row[0] - 1 for row in _rows(split)] == split.labels.tolist()
    assert set(split.labels.tolist()) == {0, 1, 2, 3}


def test_match_labels_say_whether_the_dominant_symbols_agree() -> None:
    split = _load("match", n=400, max_len=32).train
    agree = total = 0
    for a, b, label in zip(_rows(split, 0), _rows(split, 1), split.labels.tolist(), strict=True):
        # Long sequences are dominated clearly enough for the mode to find the symbol.
        if len(a) >= 20 and len(b) >= 20:
            mode_a, mode_b = Counter(a).most_common(1)[0][0], Counter(b).most_common(1)[0][0]
            agree += (mode_a == mode_b) == bool(label)
            total += 1
    assert total > 0 and agree == total
    assert 0.4 < split.labels.float().mean() < 0.6, "balanced classes"


def test_max_len_too_short_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"data.max_len >= 5"):
        _load("first", max_len=4)


def test_tiny_run_learns_every_task_above_the_majority_rate(tmp_path: Path, capsys) -> None:
    argv = ["run", "--suite", "smoke", "--models", "full_attention", "--no-progress"]
    argv += ["--set", "train.steps=40", "--set", "data.n_dev=64", "--set", "data.n_test=128"]
    assert main([*argv, "--out", str(tmp_path), "--run-id", "s"]) == 0
    records = read_records(tmp_path / "s")
    assert [r.task for r in records] == ["majority", "first", "match"]
    for r in records:
        assert r.status == "ok"
        assert r.metrics["accuracy"] > r.metrics["majority_accuracy"] + 0.3, r.task
