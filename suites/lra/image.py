"""LRA Image: CIFAR-10 in grey levels, 1024 pixel tokens (10 classes).

Files: cifar-10-batches-py/{data_batch_1..5, test_batch} (the python version of CIFAR-10), found
under --data-dir or the download dir (suites.lra.files). Each batch is a pickled dict with
b"data" (N, 3072) uint8, the R, G and B planes of a 32 x 32 image in row-major order, and
b"labels". The pickles are read with an unpickler that accepts only numpy arrays and builtins.

Grey levels as LRA (tf.image.rgb_to_grayscale on uint8, then a cast to int): in float32,
Y = 0.2989 R/255 + 0.5870 G/255 + 0.1140 B/255, and grey = trunc(Y x 255.5) (TF's
convert_image_dtype back to uint8 scales by 255 + 0.5 and truncates). A pixel's grey level 0..255
is its token; every image has length 1024 (black pixels are real tokens).

Splits as LRA (TFDS train[:90%] / train[90%:] / test): the first 90 % of the training batches in
file order are train, the last 10 % dev, test_batch is test. The request's sizes are upper
bounds: the first n of each (CIFAR-10's files are in random order).
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from suites.data import DataRequest, Split, TaskData
from suites.lra.files import check_not_partial, data_roots, not_found

logger = logging.getLogger(__name__)

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CIFAR_DIR = "cifar-10-batches-py"
TRAIN_FRACTION = 0.9
GREY_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global other than the numpy array machinery."""


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise _RefusedGlobal(f"CIFAR batch refers to {module}.{name}; not allowed")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: RGB (N, 3, 32, 32) uint8 and labels (N,) int64."""
    raw = path.read_bytes()
    if not raw:
        raise ValueError(f"{path}: empty file, not a CIFAR-10 batch; fetch it again")
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _RefusedGlobal as err:
        raise pickle.UnpicklingError(f"{path}: {err}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError) as err:
        raise ValueError(
            f"{path}: not a readable CIFAR-10 batch (truncated or corrupt: {type(err).__name__}: "
            f"{err}); fetch it again with `bench data download image`"
        ) from None
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a CIFAR-10 batch (needs b'data' and b'labels')") from err
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path}: data {data.shape} / labels {labels.shape}; want (N, 3072)")
    if len(labels) and not (labels.min() >= 0 and labels.max() <= 9):
        raise ValueError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def to_grey(rgb: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) uint8 -> (N, H, W) uint8 grey levels as tf.image.rgb_to_grayscale."""
    flt = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    y = np.tensordot(GREY_WEIGHTS, flt, axes=([0], [1]))  # (N, H, W)
    return np.clip(y * np.float32(255.5), 0, 255).astype(np.uint8)


def find_cifar(request: DataRequest) -> Path:
    """The cifar-10-batches-py directory with all six batches, or DataUnavailable."""
    looked = []
    for root in data_roots(request, "image"):
        for candidate in (root / CIFAR_DIR, root):
            looked.append(candidate)
            if all((candidate / b).is_file() for b in (*TRAIN_BATCHES, TEST_BATCH)):
                return candidate
    batches = (*TRAIN_BATCHES, TEST_BATCH)
    check_not_partial("image", [(c, [c / b for b in batches]) for c in looked])
    raise not_found("image", f"CIFAR-10 ({CIFAR_DIR}/data_batch_1..5, test_batch)", looked)


def _split(rgb: np.ndarray, labels: np.ndarray) -> Split:
    n = len(labels)
    tokens = torch.from_numpy(to_grey(rgb).reshape(n, -1).astype(np.int64))  # (N, 1024)
    lengths = torch.full((n,), tokens.shape[1], dtype=torch.int64)
    return Split(inputs=(tokens,), lengths=(lengths,), labels=torch.from_numpy(labels))


def load_image(request: DataRequest) -> TaskData:
    """Grey CIFAR-10: train / dev = first 90 % / last 10 % of the training batches, test."""
    directory = find_cifar(request)
    if request.max_len != 32 * 32:
        raise ValueError(
            f"image: max_len must be 1024 (32 x 32 pixels), got {request.max_len}; "
            "use --set image.data.max_len=1024"
        )
    parts = [read_batch(directory / b) for b in TRAIN_BATCHES]
    rgb = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    cut = round(TRAIN_FRACTION * len(labels))
    test_rgb, test_labels = read_batch(directory / TEST_BATCH)
    n_train, n_dev, n_test = request.n_train, request.n_dev, request.n_test
    data = TaskData(
        _split(rgb[:cut][:n_train], labels[:cut][:n_train]),
        _split(rgb[cut:][:n_dev], labels[cut:][:n_dev]),
        _split(test_rgb[:n_test], test_labels[:n_test]),
        f"cifar10:{directory}",
    )
    logger.info("read CIFAR-10 from %s", directory)
    return data
