"""LRA Retrieval: byte-level ACL Anthology Network citation pairs, two inputs per example.

Files: new_aan_pairs.{train,eval,test}.tsv from the LRA release (lra_release/tsv_data/), found
under --data-dir or the download dir (suites.lra.files), directly or in tsv_data/,
lra_release/tsv_data/ or lra_release/lra_release/tsv_data/. Each line holds five tab-separated
fields, no header, no quoting: label (a float, 1.0 = linked), id1, id2, text1, text2. train,
eval and test become train, dev and test.

Tokens: bytes + 1 (1..256, 0 = padding). LRA cuts each raw text to 10 000 bytes and then to
max_length; here each text keeps its first min(10 000, max_len) bytes, which is the same. The
split sizes of the request are upper bounds: the first n lines of each file are read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from suites.data import DataRequest, Split, TaskData
from suites.lra.files import check_not_partial, data_roots, encode_bytes, not_found

logger = logging.getLogger(__name__)

AAN_FILES = {
    "train": "new_aan_pairs.train.tsv",
    "dev": "new_aan_pairs.eval.tsv",
    "test": "new_aan_pairs.test.tsv",
}
_SUBDIRS = (".", "tsv_data", "lra_release/tsv_data", "lra_release/lra_release/tsv_data")
LRA_RAW_TEXT_BYTES = 10_000


def find_aan(request: DataRequest) -> Path:
    """The directory holding the three new_aan_pairs TSVs, or DataUnavailable."""
    looked = []
    for root in data_roots(request, "retrieval"):
        for sub in _SUBDIRS:
            candidate = (root / sub) if sub != "." else root
            looked.append(candidate)
            if all((candidate / name).is_file() for name in AAN_FILES.values()):
                return candidate
    check_not_partial("retrieval", [(c, [c / n for n in AAN_FILES.values()]) for c in looked])
    raise not_found("retrieval", "AAN pairs (new_aan_pairs.{train,eval,test}.tsv)", looked)


def read_aan_tsv(path: Path, limit: int, max_len: int) -> Split:
    """The first `limit` pairs of an AAN TSV as a two-input Split."""
    keep = min(LRA_RAW_TEXT_BYTES, max_len)
    labels: list[int] = []
    first: list[bytes] = []
    second: list[bytes] = []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if len(labels) >= limit:
                break
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            fields = line.split(b"\t")
            if len(fields) != 5:
                raise ValueError(
                    f"{path}:{lineno}: expected 5 tab-separated fields (label, id1, id2, text1, "
                    f"text2), got {len(fields)}"
                )
            try:
                label = float(fields[0])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: label {fields[0]!r} is not a number") from None
            if label not in (0.0, 1.0):
                raise ValueError(f"{path}:{lineno}: label {label} is not 0 or 1")
            labels.append(int(label))
            first.append(fields[3][:keep])
            second.append(fields[4][:keep])
    if not labels:
        raise ValueError(f"{path}: no examples (the file is empty); fetch it again")
    tokens1, lengths1 = encode_bytes(first, max_len, f"{path} text1")
    tokens2, lengths2 = encode_bytes(second, max_len, f"{path} text2")
    return Split(
        inputs=(tokens1, tokens2),
        lengths=(lengths1, lengths2),
        labels=torch.tensor(labels, dtype=torch.int64),
    )


def load_retrieval(request: DataRequest) -> TaskData:
    """AAN byte-level pairs: train / eval / test files as train / dev / test."""
    directory = find_aan(request)
    limits = {"train": request.n_train, "dev": request.n_dev, "test": request.n_test}
    splits = {
        split: read_aan_tsv(directory / name, limits[split], request.max_len)
        for split, name in AAN_FILES.items()
    }
    logger.info("read AAN pairs from %s", directory)
    return TaskData(splits["train"], splits["dev"], splits["test"], f"aan-tsv:{directory}")
