"""ListOps: generator labels, bounds, determinism, the official TSV reader, the loader, its cache.

The labels and the sampler are checked against independent references written here: a stack
evaluator over the token list (numpy.median for MED) and a plain recursive LRA-order sampler.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import suites.lra.listops.load as listops_load
from suites.data import PAD_ID, DataRequest, DataUnavailable
from suites.lra.files import DataIncomplete
from suites.lra.listops.generate import (
    LISTOPS_NUM_CLASSES,
    LISTOPS_TOKENS,
    LISTOPS_VOCAB_SIZE,
    _apply,
    encode_tokens,
    generate_listops,
)
from suites.lra.listops.load import listops_cache_path, load_listops
from suites.lra.listops.tsv import read_listops_tsv

# ---------------------------------------------------------------------------------------------
# Independent references


REFERENCE_OPS: dict[str, Callable[[list[int]], int]] = {
    "[MIN": min,
    "[MAX": max,
    "[MED": lambda a: int(np.median(a)),
    "[SM": lambda a: sum(a) % 10,
}


def reference_value(tokens: list[str], apply: Callable[[str, list[int]], int] | None = None) -> int:
    """Evaluate a prefix ListOps expression with an explicit stack (no recursion); operator
    values from `apply(op, args)`, by default the reference ones above (numpy.median for MED)."""
    apply = apply or (lambda op, args: REFERENCE_OPS[op](args))
    stack: list[tuple[str, list[int]]] = []
    result: int | None = None
    for tok in tokens:
        if tok.startswith("["):
            stack.append((tok, []))
            continue
        if tok == "]":
            op, args = stack.pop()
            assert len(args) >= 2, f"operator {op} with {len(args)} arguments"
            value = apply(op, args)
        else:
            value = int(tok)
            assert 0 <= value <= 9
        if stack:
            stack[-1][1].append(value)
        else:
            assert result is None, "more than one top-level expression"
            result = value
    assert not stack and result is not None, "unbalanced expression"
    return result


def reference_sampler(
    seed: int, n: int, min_length: int, max_length: int, max_depth: int = 10, max_args: int = 10
) -> list[list[str]]:
    """LRA's draw order, written plainly: r, digit | (arg count, args..., operator)."""
    rng = random.Random(seed)

    def tree(depth: int) -> list[str]:
        r = rng.random() if depth < max_depth else 1
        if r > 0.25:
            return [str(rng.choice(range(10)))]
        args = [tree(depth + 1) for _ in range(rng.randint(2, max_args))]
        op = rng.choice(["[MIN", "[MAX", "[MED", "[SM"])
        return [op, *(tok for arg in args for tok in arg), "]"]

    kept: list[list[str]] = []
    while len(kept) < n:
        tokens = tree(1)
        if min_length < len(tokens) < max_length and tokens not in kept:
            kept.append(tokens)
    return kept


@pytest.fixture(scope="module")
def examples() -> list[tuple[list[str], int]]:
    return generate_listops(500, seed=3, min_length=20, max_length=100)


# ---------------------------------------------------------------------------------------------
# Vocabulary and labels


def test_vocabulary_ids() -> None:
    assert len(LISTOPS_TOKENS) == 15 and LISTOPS_VOCAB_SIZE == 16 and LISTOPS_NUM_CLASSES == 10
    assert encode_tokens(list(LISTOPS_TOKENS)) == list(range(1, 16))
    assert encode_tokens(["[MAX", "2", "9", "]"]) == [12, 3, 10, 15]
    assert PAD_ID not in encode_tokens(list(LISTOPS_TOKENS))
    with pytest.raises(ValueError, match=r"\[MEAN"):
        encode_tokens(["[MEAN", "1", "2", "]"])


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("[MAX 2 9 ]", 9),
        ("[MIN 4 7 3 ]", 3),
        ("[MED 1 2 3 4 ]", 2),  # median 2.5 is truncated
        ("[MED 9 8 ]", 8),  # 8.5 -> 8
        ("[MED 5 1 9 ]", 5),
        ("[SM 5 7 ]", 2),
        ("[SM 9 9 9 ]", 7),
        ("[MAX 2 [MIN 4 7 ] 0 ]", 4),
        ("[SM [MED 1 2 3 4 ] [MAX 2 9 ] 1 ]", 2),  # 2 + 9 + 1 = 12
        ("[MIN [SM 5 5 ] [MAX 3 [MED 6 7 ] ] ]", 0),
        ("7", 7),
    ],
)
def test_library_operators_and_reference_evaluator_on_hand_written(source: str, value: int) -> None:
    """The generator's operator semantics (`_apply`, `_median_int` for MED) and the reference
    evaluator, each against the value worked out by hand."""
    assert reference_value(source.split(), apply=_apply) == value
    assert reference_value(source.split()) == value


def test_labels_match_independent_evaluator(examples) -> None:
    assert len(examples) == 500
    for tokens, label in examples:
        assert isinstance(label, int)
        assert label == reference_value(tokens), " ".join(tokens)


def test_sampler_matches_plain_lra_order_reference() -> None:
    ours = generate_listops(150, seed=11, min_length=8, max_length=60)
    assert [tokens for tokens, _ in ours] == reference_sampler(11, 150, 8, 60)
    ours = generate_listops(40, seed=5, min_length=3, max_length=30, max_depth=4, max_args=5)
    assert [tokens for tokens, _ in ours] == reference_sampler(5, 40, 3, 30, 4, 5)


def test_lengths_strictly_inside_bounds_and_unique(examples) -> None:
    lengths = [len(tokens) for tokens, _ in examples]
    assert all(20 < n < 100 for n in lengths)
    assert len({tuple(tokens) for tokens, _ in examples}) == len(examples)
    lra = generate_listops(30, seed=0, min_length=500, max_length=2000)
    assert all(500 < len(tokens) < 2000 for tokens, _ in lra)
    # Tight bounds force many repeats; they must still be dropped.
    tight = generate_listops(60, seed=1, min_length=3, max_length=5)
    assert all(len(tokens) == 4 for tokens, _ in tight)
    assert len({tuple(tokens) for tokens, _ in tight}) == 60


def test_same_seed_same_data_other_seed_other_data(examples) -> None:
    # Generation stops once n examples are found, so a smaller n gives a prefix.
    assert generate_listops(150, seed=3, min_length=20, max_length=100) == examples[:150]
    other = generate_listops(150, seed=4, min_length=20, max_length=100)
    assert other != examples[:150]
    assert len({tuple(t) for t, _ in other} & {tuple(t) for t, _ in examples}) < 15


def test_label_distribution_not_degenerate(examples) -> None:
    counts = np.bincount([label for _, label in examples], minlength=10)
    assert (counts > 0).sum() >= 5
    assert counts.max() < 0.5 * len(examples)


def test_impossible_bounds_and_parameters_raise() -> None:
    with pytest.raises(ValueError, match="strictly between"):
        generate_listops(5, seed=0, min_length=1, max_length=4)  # lengths 2, 3 do not exist
    with pytest.raises(ValueError, match="max_args"):
        generate_listops(5, seed=0, min_length=10, max_length=50, max_args=1)
    with pytest.raises(ValueError, match="would not finish"):
        generate_listops(5, seed=0, min_length=10, max_length=50, max_depth=40, max_args=40)
    assert generate_listops(0, seed=0, min_length=10, max_length=50) == []


# ---------------------------------------------------------------------------------------------
# Official TSV files

ROWS = {
    "train": [
        ("( ( ( [MAX 2 ) 9 ) ] )", 9),
        ("( ( ( ( ( [SM 5 ) 7 ) ( ( ( [MIN 4 ) 1 ) ] ) ) ] )", 3),
        ("( ( ( ( [MED 1 ) 2 ) 3 ) ] )", 2),
    ],
    "dev": [("( ( ( [MIN 4 ) 8 ) ] )", 4), ("( ( ( [SM 9 ) 9 ) ] )", 8)],
    "test": [("( ( ( ( [MAX 0 ) 0 ) 1 ) ] )", 1)],
}
FILES = {"train": "basic_train.tsv", "dev": "basic_val.tsv", "test": "basic_test.tsv"}


def write_tsvs(directory: Path, rows: dict[str, list[tuple[str, int]]] = ROWS) -> None:
    """Write files as LRA does (csv.writer with a tab: CRLF line ends, header Source/Target)."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, name in FILES.items():
        lines = ["Source\tTarget", *(f"{src}\t{label}" for src, label in rows[split])]
        (directory / name).write_bytes(("\r\n".join(lines) + "\r\n").encode())


def request_for(tmp_path: Path, **kw) -> DataRequest:
    args = dict(max_len=64, n_train=100, n_dev=20, n_test=20, seed=0, cache_dir=tmp_path / "c")
    args.update(kw)
    return DataRequest(**args)


def test_read_listops_tsv(tmp_path: Path) -> None:
    write_tsvs(tmp_path)
    rows = read_listops_tsv(tmp_path / "basic_train.tsv")
    assert rows == [
        (["[MAX", "2", "9", "]"], 9),
        (["[SM", "5", "7", "[MIN", "4", "1", "]", "]"], 3),
        (["[MED", "1", "2", "3", "]"], 2),
    ]
    for tokens, label in rows:
        assert reference_value(tokens) == label


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("( ( ( [MAX 2 ) 9 ) ] )\tx", "not an integer"),
        ("( ( ( [MAX 2 ) 9 ) ] )\t12", "outside 0..9"),
        ("( ( ( [MAX 2 ) 9 ) ] )", "2 tab-separated fields"),
        ("( ( ( [MEAN 2 ) 9 ) ] )\t5", "unknown token"),
        ("( )\t5", "empty Source"),
    ],
)
def test_read_listops_tsv_malformed_rows(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "basic_train.tsv"
    path.write_text(f"Source\tTarget\n( ( ( [MAX 2 ) 9 ) ] )\t9\n{line}\n")
    with pytest.raises(ValueError, match=match) as err:
        read_listops_tsv(path)
    assert f"{path}:3" in str(err.value)


def test_read_listops_tsv_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("Input\tLabel\n[MAX 2 9 ]\t9\n")
    with pytest.raises(ValueError, match=r"x\.tsv:1"):
        read_listops_tsv(path)


@pytest.mark.parametrize("subdir", ["", "listops-1000"])
def test_load_listops_from_tsv(tmp_path: Path, subdir: str) -> None:
    data_dir = tmp_path / "lra"
    write_tsvs(data_dir / subdir if subdir else data_dir)
    data = load_listops(request_for(tmp_path, max_len=16, n_train=2, data_dir=data_dir))
    assert data.source == f"lra-tsv:{data_dir / subdir if subdir else data_dir}"
    assert (len(data.train), len(data.dev), len(data.test)) == (2, 2, 1)  # first n_train rows
    assert data.train.inputs[0].shape == (2, 16) and data.train.inputs[0].dtype == torch.int64
    expected = torch.tensor([12, 3, 10, 15] + [PAD_ID] * 12)
    assert torch.equal(data.train.inputs[0][0], expected)
    second = torch.tensor([14, 6, 8, 11, 5, 2, 15, 15] + [PAD_ID] * 8)
    assert torch.equal(data.train.inputs[0][1], second)
    assert data.train.lengths[0].tolist() == [4, 8]
    assert data.train.labels.tolist() == [9, 3] and data.train.labels.dtype == torch.int64
    assert data.dev.labels.tolist() == [4, 8] and data.test.labels.tolist() == [1]
    assert data.test.lengths[0].tolist() == [5]
    assert not (tmp_path / "c").exists()  # file data is not cached


def test_load_listops_missing_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    with pytest.raises(DataUnavailable) as err:  # nothing there: where we looked, the fix
        load_listops(request_for(tmp_path, data_dir=data_dir))
    message = str(err.value)
    assert str(data_dir / "basic_val.tsv") in message
    assert str(data_dir / "listops-1000" / "basic_train.tsv") in message
    assert "lra_release/listops-1000" in message and "--data-dir" in message
    # One of three: the user meant to give the files, so it is an error naming the missing two.
    (data_dir / "basic_train.tsv").write_text("Source\tTarget\n")
    with pytest.raises(DataIncomplete) as err:
        load_listops(request_for(tmp_path, data_dir=data_dir))
    message = str(err.value)
    assert (
        str(data_dir / "basic_val.tsv") in message and str(data_dir / "basic_test.tsv") in message
    )
    assert "basic_train.tsv" not in message


def test_load_listops_too_long_example(tmp_path: Path) -> None:
    write_tsvs(tmp_path / "lra")
    with pytest.raises(ValueError, match=r"max_len=4.*listops\.data\.max_len=8") as err:
        load_listops(request_for(tmp_path, max_len=4, data_dir=tmp_path / "lra"))
    assert "basic_train.tsv" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Generated data and cache


def test_generated_splits_sizes_disjoint_padded(tmp_path: Path) -> None:
    request = request_for(tmp_path, max_len=64, n_train=100, n_dev=30, n_test=40, seed=2)
    data = load_listops(request)
    assert (len(data.train), len(data.dev), len(data.test)) == (100, 30, 40)
    assert data.source == f"generated:{listops_cache_path(request)}"
    seen: set[tuple[int, ...]] = set()
    for split in (data.train, data.dev, data.test):
        tokens, lengths, labels = split.inputs[0], split.lengths[0], split.labels
        assert tokens.shape == (len(split), 64) and tokens.dtype == torch.int64
        assert labels.dtype == torch.int64 and lengths.dtype == torch.int64
        assert bool(((lengths > 16) & (lengths < 64)).all())  # bounds 64 // 4 < n < 64
        for row, n, label in zip(tokens, lengths.tolist(), labels.tolist(), strict=True):
            assert bool((row[n:] == PAD_ID).all()) and bool((row[:n] != PAD_ID).all())
            words = [LISTOPS_TOKENS[i - 1] for i in row[:n].tolist()]
            assert reference_value(words) == label
            key = tuple(row[:n].tolist())
            assert key not in seen
            seen.add(key)
    # The splits are consecutive slices of one generated stream.
    stream = generate_listops(170, seed=2, min_length=16, max_length=64)
    assert [encode_tokens(t) for t, _ in stream[100:130]] == [
        row[:n].tolist() for row, n in zip(data.dev.inputs[0], data.dev.lengths[0], strict=True)
    ]


def test_cache_written_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = request_for(tmp_path, seed=7)
    path = listops_cache_path(request)
    assert path.parent == tmp_path / "c" / "listops" and path.suffix == ".pt"
    assert not path.exists()
    first = load_listops(request)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind

    def boom(*args, **kwargs):
        raise AssertionError("regenerated despite the cache")

    monkeypatch.setattr(listops_load, "generate_listops", boom)
    second = load_listops(request)
    assert second.source == first.source == f"generated:{path}"
    for name in ("train", "dev", "test"):
        a, b = getattr(first, name), getattr(second, name)
        assert torch.equal(a.inputs[0], b.inputs[0])
        assert torch.equal(a.lengths[0], b.lengths[0])
        assert torch.equal(a.labels, b.labels)
    with pytest.raises(AssertionError, match="regenerated"):
        load_listops(request_for(tmp_path, seed=8))


def test_cache_path_depends_on_every_parameter(tmp_path: Path) -> None:
    base = request_for(tmp_path)
    paths = {listops_cache_path(base)}
    for change in ({"seed": 1}, {"max_len": 128}, {"n_train": 101}, {"n_dev": 21}, {"n_test": 19}):
        paths.add(listops_cache_path(request_for(tmp_path, **change)))
    assert len(paths) == 6
    assert listops_cache_path(request_for(tmp_path)) == listops_cache_path(base)


def test_unreadable_cache_is_regenerated(tmp_path: Path) -> None:
    request = request_for(tmp_path, n_train=20, n_dev=5, n_test=5)
    path = listops_cache_path(request)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    data = load_listops(request)
    assert len(data.train) == 20
    again = load_listops(request)
    assert torch.equal(again.train.inputs[0], data.train.inputs[0])
