"""Per-example test predictions of an ok cell, kept compact in its record (`test_predictions`), so
that two cells on the same test split can be compared example by example (`bench.report.stats`).

The stored form is a JSON object keyed to the test split's content hash:
{"split_sha256": hex digest of the split's tokens and labels (`suites.data.Split.content_sha256`),
 "n": number of test examples, "dtype": "uint8" or "uint16" (the narrowest holding every class),
 "predicted": base64 of the little-endian predicted classes, "correct": base64 of np.packbits of
 the correctness bits (big-endian bit order, zero-padded to a whole byte)}.
Records of efficiency cells (no training) and records written before this field existed have
none ({}). Imports numpy only: reports read it without torch.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_DTYPES = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2")}


@dataclass(frozen=True)
class TestPredictions:
    """split_sha256: the test split's content hash; predicted (N,) class ids; correct (N,) bool."""

    __test__ = False  # not a pytest class

    split_sha256: str
    predicted: np.ndarray
    correct: np.ndarray

    @property
    def n(self) -> int:
        return int(self.correct.shape[0])

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean())


def encode(split_sha256: str, predicted: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The record field for predicted classes `predicted` (N,) against `labels` (N,)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    if predicted.shape != labels.shape or predicted.ndim != 1:
        raise ValueError(f"predicted {predicted.shape} and labels {labels.shape} must be (N,)")
    if predicted.size and (predicted.min() < 0 or predicted.max() > np.iinfo(np.uint16).max):
        raise ValueError("predicted classes must lie in [0, 65535] to be stored")
    name = "uint8" if not predicted.size or predicted.max() <= np.iinfo(np.uint8).max else "uint16"
    correct = predicted == labels  # (N,) bool
    return {
        "split_sha256": split_sha256,
        "n": int(predicted.shape[0]),
        "dtype": name,
        "predicted": _b64(predicted.astype(_DTYPES[name]).tobytes()),
        "correct": _b64(np.packbits(correct).tobytes()),
    }


def decode(field: Mapping[str, Any]) -> TestPredictions:
    """The stored field back as arrays; a field that does not add up raises ValueError."""
    n = int(field["n"])
    dtype = _DTYPES.get(field.get("dtype", ""))
    if dtype is None:
        raise ValueError(f"test_predictions dtype {field.get('dtype')!r} is not one of {_DTYPES}")
    predicted = np.frombuffer(base64.b64decode(field["predicted"]), dtype=dtype)
    bits = np.unpackbits(np.frombuffer(base64.b64decode(field["correct"]), dtype=np.uint8))
    if predicted.shape != (n,) or bits.shape[0] != (n + 7) // 8 * 8:
        raise ValueError(f"test_predictions hold {predicted.shape[0]} classes for n={n}")
    return TestPredictions(str(field["split_sha256"]), predicted.astype(np.int64), bits[:n] == 1)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
