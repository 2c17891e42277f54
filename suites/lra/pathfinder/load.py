"""LRA Pathfinder (and Path-X): generated images, split, cached on disk, as pixel tokens.

The images come from `images.py` (the drewlinsley/pathfinder snake rules with
the LRA parameters, drawn many at a time), by default with the "lra" generator (the reference's
rendering and its seed rule, under which most distractors are not drawn: most likely how LRA's
released files were made, inferred); `--set pathfinder.data.generator=intended` draws what the
reference meant instead (see draw.py). The resolution follows `max_len`: 1024 tokens = 32 x 32
Pathfinder ("hard": contour length 14, the set LRA reports), 16384 = 128 x 128 Path-X (the LRA
`pathfinder128` parameters). A pixel's grey level 0..255 is its token; every image has its full
length (masks come from these explicit lengths, never from black pixels).

Each split is drawn in chunks of CHUNK images, chunk i of split s seeded by
SeedSequence([seed, s, i]); chunks run on a pool of worker processes and are concatenated in
order, so the data does not depend on the number of workers. Labels are exactly balanced within
each chunk. The result is cached at cache_dir/pathfinder/<hash of every parameter>.pt.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from suites.cache import cache_file, check_range, load_tensors, save_tensors
from suites.data import DataRequest, Split, TaskData
from suites.lra.pathfinder.draw import GENERATORS, PathfinderParams
from suites.lra.pathfinder.images import draw_images
from suites.workers import bound_pool

logger = logging.getLogger(__name__)

# Bump whenever a change to the generator changes its output, so stale caches are not reused.
PATHFINDER_GENERATOR_VERSION = 1
CHUNK = 256  # images per seeded chunk (even, so every full chunk is balanced)
_SPLITS = ("train", "dev", "test")

# LRA lra_benchmarks/data/pathfinder.py, Pathfinder32 "hard" (curv_contour_length_14).
PATHFINDER32 = PathfinderParams()
# LRA Pathfinder128 ("Path-X", hard). Python-2 integer division as in the original run:
# distractor_length = 14 / 3 = 4, num_distractor_snakes = 35 / 4 = 8; paddle_length and
# paddle_contrast keep the generator defaults (5 and 1.0).
PATHX = PathfinderParams(
    size=128,
    padding=1,
    paddle_length=5,
    paddle_thickness=1.5,
    paddle_margins=(2, 3),
    marker_radius=3.0,
    seed_distance=20,
    continuity=1.8,
    contour_length=14,
    distractor_length=4,
    num_distractor_snakes=8,
    snake_contrast=0.9,
    paddle_contrast=1.0,
)
PRESETS = {32 * 32: PATHFINDER32, 128 * 128: PATHX}


def params_for(max_len: int, generator: str = "") -> PathfinderParams:
    """The generator parameters for a sequence length (1024: Pathfinder32, 16384: Path-X) and a
    generator ("" = the default "lra"; "intended"; see suites/lra/pathfinder/draw.py)."""
    if max_len not in PRESETS:
        raise ValueError(
            f"pathfinder: max_len={max_len} is not an image size; use "
            "--set pathfinder.data.max_len=1024 (32x32) or 16384 (128x128 Path-X)"
        )
    if generator and generator not in GENERATORS:
        raise ValueError(
            f"pathfinder: generator {generator!r} is unknown; use --set "
            f"pathfinder.data.generator=<{'|'.join(GENERATORS)}>"
        )
    preset = PRESETS[max_len]
    return dataclasses.replace(preset, generator=generator) if generator else preset


def _draw_chunk(job: tuple[PathfinderParams, int, int, int, int]) -> tuple[np.ndarray, ...]:
    params, seed, split, index, n = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, split, index]))
    images, labels, _ = draw_images(params, n, rng)
    return images, labels


def generate_split(
    params: PathfinderParams, n: int, *, seed: int, split: int, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    """n images (n, H, W) uint8 and labels (n,) of one split, the same for any `workers`."""
    jobs = [
        (params, seed, split, i, min(CHUNK, n - i * CHUNK)) for i in range(math.ceil(n / CHUNK))
    ]
    if workers > 1 and len(jobs) > 1:
        # fork: the workers need only numpy and this module, which the parent already has; they
        # die with the parent (a killed run leaves no orphans).
        with bound_pool(min(workers, len(jobs))) as pool:
            parts = list(pool.map(_draw_chunk, jobs))
    else:
        parts = [_draw_chunk(job) for job in jobs]
    if not parts:
        return np.zeros((0, params.size, params.size), np.uint8), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def default_workers() -> int:
    """Worker processes for generation: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def _cache_params(request: DataRequest, params: PathfinderParams) -> dict:
    return {
        "version": PATHFINDER_GENERATOR_VERSION,
        "chunk": CHUNK,
        "seed": request.seed,
        "n": [request.n_train, request.n_dev, request.n_test],
        # The parameters' generator field was named "variant" when the key was made: kept, so
        # caches drawn before the rename stay valid (the drawing did not change).
        "generator": {
            ("variant" if name == "generator" else name): value
            for name, value in dataclasses.asdict(params).items()
        },
    }


def pathfinder_cache_path(request: DataRequest) -> Path:
    """Cache file for `request`: cache_dir/pathfinder/pf<size>-<hash of every parameter>.pt."""
    params = params_for(request.max_len, request.generator)
    return cache_file(
        request.cache_dir, "pathfinder", _cache_params(request, params), f"pf{params.size}-"
    )


def _to_split(images: torch.Tensor, labels: torch.Tensor) -> Split:
    n = images.shape[0]
    tokens = images.reshape(n, -1).to(torch.int64)  # (N, H*W), row-major pixels
    lengths = torch.full((n,), tokens.shape[1], dtype=torch.int64)
    return Split(inputs=(tokens,), lengths=(lengths,), labels=labels.to(torch.int64))


def _checker(request: DataRequest, params: PathfinderParams):
    """The range check of a cached entry: every split's images (n, size, size), labels 0/1."""
    sizes = (request.n_train, request.n_dev, request.n_test)

    def check(tensors: dict[str, torch.Tensor]) -> None:
        for name, n in zip(_SPLITS, sizes, strict=True):
            shape = tuple(tensors[f"{name}.images"].shape)
            if shape != (n, params.size, params.size):
                raise ValueError(
                    f"{name}.images has shape {shape}, not {(n, params.size, params.size)}"
                )
            check_range(tensors, f"{name}.labels", 0, 2)

    return check


def load_pathfinder(request: DataRequest, workers: int | None = None) -> TaskData:
    """Pathfinder for `request`: generated (or read from the cache), max_len = image pixels.

    `request.data_dir` is not read: the official PNG release is not supported yet.
    """
    params = params_for(request.max_len, request.generator)
    path = pathfinder_cache_path(request)
    tensors = load_tensors(path, "Pathfinder", _checker(request, params))
    if tensors is None:
        start = time.perf_counter()
        sizes = (request.n_train, request.n_dev, request.n_test)
        tensors = {}
        for split, (name, n) in enumerate(zip(_SPLITS, sizes, strict=True)):
            images, labels = generate_split(
                params, n, seed=request.seed, split=split, workers=workers or default_workers()
            )
            tensors[f"{name}.images"] = torch.from_numpy(images)
            tensors[f"{name}.labels"] = torch.from_numpy(labels)
        elapsed = time.perf_counter() - start
        logger.info("generated %d Pathfinder images in %.1f s", sum(sizes), elapsed)
        save_tensors(tensors, path, "Pathfinder")
    splits = [_to_split(tensors[f"{s}.images"], tensors[f"{s}.labels"]) for s in _SPLITS]
    return TaskData(*splits, f"generated:{path}")
