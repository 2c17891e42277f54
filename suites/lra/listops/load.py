"""LRA ListOps, the task loader: the official TSVs when `--data-dir` is given, otherwise data from
our generator (`generate.py`), generated once per parameter set and cached on disk."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from suites.cache import cache_file, check_range, load_tensors, save_tensors
from suites.data import DataRequest, Split, TaskData
from suites.lra.listops.generate import (
    LISTOPS_GENERATOR_VERSION,
    LISTOPS_MAX_ARGS,
    LISTOPS_MAX_DEPTH,
    LISTOPS_NUM_CLASSES,
    LISTOPS_VALUE_P,
    LISTOPS_VOCAB_SIZE,
    LRA_MAX_LENGTH,
    encode_split,
    generate_listops,
)
from suites.lra.listops.tsv import load_tsv

logger = logging.getLogger(__name__)
_SPLITS = ("train", "dev", "test")


def listops_length_bounds(max_len: int) -> tuple[int, int]:
    """(min_length, max_length) of generated data for a padded length `max_len`.

    max_length = min(max_len, 2000) and min_length = max_length // 4, both exclusive: at
    max_len 2048 these are LRA's 500 < length < 2000; shorter max_len scale both down.
    """
    max_length = min(max_len, LRA_MAX_LENGTH)
    return max_length // 4, max_length


def _generation_params(request: DataRequest) -> dict[str, int | float]:
    """Every parameter that determines the generated tensors."""
    min_length, max_length = listops_length_bounds(request.max_len)
    return {
        "version": LISTOPS_GENERATOR_VERSION,
        "n_train": request.n_train,
        "n_dev": request.n_dev,
        "n_test": request.n_test,
        "seed": request.seed,
        "min_length": min_length,
        "max_length": max_length,
        "max_depth": LISTOPS_MAX_DEPTH,
        "max_args": LISTOPS_MAX_ARGS,
        "value_p": LISTOPS_VALUE_P,
        "max_len": request.max_len,
    }


def listops_cache_path(request: DataRequest) -> Path:
    """Cache file of the generated data for `request`: cache_dir/listops/<params hash>.pt."""
    return cache_file(request.cache_dir, "listops", _generation_params(request))


def _to_tensors(data: TaskData) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in _SPLITS:
        split: Split = getattr(data, name)
        out[f"{name}.tokens"] = split.inputs[0]
        out[f"{name}.lengths"] = split.lengths[0]
        out[f"{name}.labels"] = split.labels
    return out


def _check_cached(tensors: dict[str, torch.Tensor]) -> None:
    """Token ids within the vocabulary, labels within the classes (KeyError/ValueError)."""
    for name in _SPLITS:
        check_range(tensors, f"{name}.tokens", 0, LISTOPS_VOCAB_SIZE)
        check_range(tensors, f"{name}.labels", 0, LISTOPS_NUM_CLASSES)


def _from_cache(path: Path, request: DataRequest) -> TaskData | None:
    """The cached data at `path`, or None if it is missing, unreadable or of other split sizes
    (then it is regenerated)."""
    tensors = load_tensors(path, "ListOps", _check_cached)
    if tensors is None:
        return None
    try:
        splits = [
            Split(
                inputs=(tensors[f"{name}.tokens"],),
                lengths=(tensors[f"{name}.lengths"],),
                labels=tensors[f"{name}.labels"],
            )
            for name in _SPLITS
        ]
    except (KeyError, ValueError) as err:
        logger.warning("ignoring malformed ListOps cache %s (%s); regenerating", path, err)
        return None
    sizes = tuple(len(s) for s in splits)
    if sizes != (request.n_train, request.n_dev, request.n_test):
        logger.warning("ignoring ListOps cache %s with split sizes %s; regenerating", path, sizes)
        return None
    return TaskData(*splits, f"generated:{path}")


def _generate(request: DataRequest, path: Path) -> TaskData:
    """Generate all splits at once (so no example is in two splits) and cache them."""
    min_length, max_length = listops_length_bounds(request.max_len)
    n_train, n_dev = request.n_train, request.n_dev
    examples = generate_listops(
        n_train + n_dev + request.n_test,
        seed=request.seed,
        min_length=min_length,
        max_length=max_length,
    )
    data = TaskData(
        encode_split(examples[:n_train], request.max_len),
        encode_split(examples[n_train : n_train + n_dev], request.max_len),
        encode_split(examples[n_train + n_dev :], request.max_len),
        f"generated:{path}",
    )
    save_tensors(_to_tensors(data), path, "ListOps")
    return data


def load_listops(request: DataRequest) -> TaskData:
    """ListOps for `request`: the official TSVs if `request.data_dir` is set, else generated.

    Generated data uses listops_length_bounds(request.max_len) and request.seed and is cached at
    listops_cache_path(request). TSV data takes the first n_train / n_dev / n_test rows of
    basic_train / basic_val / basic_test.
    """
    if request.data_dir is not None:
        return load_tsv(request, Path(request.data_dir))
    path = listops_cache_path(request)
    cached = _from_cache(path, request)
    return cached if cached is not None else _generate(request, path)
