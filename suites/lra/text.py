"""LRA Text: byte-level IMDB sentiment from the `aclImdb` folder (Maas et al. 2011).

Files: aclImdb/{train,test}/{pos,neg}/*.txt (the layout of aclImdb_v1.tar.gz), found under
--data-dir or the download dir (suites.lra.files). Labels: pos = 1, neg = 0 (as TFDS
imdb_reviews, which LRA uses). Tokens: UTF-8 bytes + 1 (1..256, 0 = padding), each review
truncated to its first max_len bytes, as LRA's ByteTextEncoder and max_length do.

Splits. IMDB has no dev split and LRA selected models on test; here dev is carved from train:
a seeded 10 % of the 25 000 training reviews (2 500), never from test. The split sizes of the
request are upper bounds: a capped split keeps a seeded random subset (the files are ordered by
class, so a prefix would hold one class only). The LRA release tarball has no IMDB files, so
there is no TSV reader here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from suites.data import DataRequest, Split, TaskData
from suites.lra.files import (
    check_not_partial,
    data_roots,
    encode_bytes,
    not_found,
    seeded_order,
)

logger = logging.getLogger(__name__)

DEV_FRACTION = 0.1
_CLASSES = (("neg", 0), ("pos", 1))


def find_imdb(request: DataRequest) -> Path:
    """The aclImdb directory (holding train/ and test/ with pos/ and neg/), or DataUnavailable."""
    looked = []
    for root in data_roots(request, "text"):
        for candidate in (root / "aclImdb", root):
            looked.append(candidate)
            if all((candidate / s / c).is_dir() for s in ("train", "test") for c, _ in _CLASSES):
                return candidate
    need = [(c, [c / s / k for s in ("train", "test") for k, _ in _CLASSES]) for c in looked]
    check_not_partial("text", need)
    raise not_found("text", "IMDB (aclImdb/{train,test}/{pos,neg}/*.txt)", looked)


def list_reviews(split_dir: Path) -> tuple[list[Path], torch.Tensor]:
    """Review files of one split in a fixed order (neg then pos, by name) and their labels."""
    files: list[Path] = []
    labels: list[int] = []
    for name, label in _CLASSES:
        found = sorted((split_dir / name).glob("*.txt"))
        files += found
        labels += [label] * len(found)
    return files, torch.tensor(labels, dtype=torch.int64)


def _read(files: list[Path], labels: torch.Tensor, index: torch.Tensor, max_len: int) -> Split:
    chosen = [files[i] for i in index.tolist()]
    tokens, lengths = encode_bytes(
        [f.read_bytes() for f in chosen], max_len, str(chosen[0].parent) if chosen else ""
    )
    return Split(inputs=(tokens,), lengths=(lengths,), labels=labels[index])


def load_text(request: DataRequest) -> TaskData:
    """IMDB byte-level splits: train and dev from aclImdb/train (dev = seeded 10 %), test."""
    root = find_imdb(request)
    train_files, train_labels = list_reviews(root / "train")
    test_files, test_labels = list_reviews(root / "test")
    if not train_files or not test_files:
        raise not_found("text", "IMDB review files (*.txt)", [root / "train", root / "test"])
    order = seeded_order(len(train_files), request.seed, salt=1)
    n_dev_pool = round(DEV_FRACTION * len(train_files))
    dev_index = order[:n_dev_pool][: request.n_dev]
    train_index = order[n_dev_pool:][: request.n_train]
    test_index = seeded_order(len(test_files), request.seed, salt=2)[: request.n_test]
    data = TaskData(
        _read(train_files, train_labels, train_index, request.max_len),
        _read(train_files, train_labels, dev_index, request.max_len),
        _read(test_files, test_labels, test_index, request.max_len),
        f"aclImdb:{root}",
    )
    logger.info("read IMDB from %s", root)
    return data
