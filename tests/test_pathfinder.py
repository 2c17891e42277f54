"""Pathfinder: determinism, balance, labels against an independent flood fill, the loader's
shapes, lengths and cache.

The flood fill below knows nothing of snakes: it walks 8-connected pixels brighter than a
threshold from one marker centre and reports whether it reaches the other.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch

import suites.lra.pathfinder.load as pathfinder
from suites.data import DataRequest
from suites.lra.pathfinder.draw import PathfinderParams
from suites.lra.pathfinder.images import draw_images
from suites.lra.pathfinder.load import PATHFINDER32, generate_split, load_pathfinder


def connected(image: np.ndarray, start: np.ndarray, goal: np.ndarray, threshold: int) -> bool:
    """Is `goal` reachable from `start` over 8-connected pixels > threshold?"""
    on = image > threshold
    height, width = on.shape
    seen = np.zeros_like(on)
    queue = deque([(int(start[0]), int(start[1]))])
    seen[queue[0]] = True
    while queue:
        y, x = queue.popleft()
        if (y, x) == (int(goal[0]), int(goal[1])):
            return True
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                v, u = y + dy, x + dx
                if 0 <= v < height and 0 <= u < width and on[v, u] and not seen[v, u]:
                    seen[v, u] = True
                    queue.append((v, u))
    return False


# LRA's 32 x 32 geometry does not make contours pixel-separable: dashes of a contour are 2 px
# apart (2 x margin) and two contours may come about as close, so no pixel flood fill can read
# the label there (humans and models use the continuity of the contour). This geometry keeps
# every rule and makes pixels decide: dashes 3 px thick touch their neighbours (gap 2 x margin =
# 2 < thickness) while the overlap rule keeps other contours about 2 x margin apart.
THICK = PathfinderParams(
    size=48,
    paddle_length=3,
    paddle_thickness=3.0,
    paddle_margins=(1,),
    marker_radius=1.0,
    seed_distance=10,
    contour_length=6,
    distractor_length=2,
    num_distractor_snakes=6,
    # The rendering decides pixels here; the label rules (markers on tails and heads) are the
    # same code for both generators. The "lra" rendering's 2x PIL line and soft, offset markers
    # are checked against the reference's own output in tests/test_pathfinder_lra.py.
    generator="intended",
)


@pytest.fixture(scope="module")
def drawn() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return draw_images(PATHFINDER32, 200, np.random.default_rng(7))


def test_labels_agree_with_flood_fill() -> None:
    images, labels, markers = draw_images(THICK, 200, np.random.default_rng(1))
    reach = np.array([connected(im, m[0], m[1], 60) for im, m in zip(images, markers, strict=True)])
    assert labels.sum() == 100
    # Label 1: the markers sit on the two ends of one contour.
    assert reach[labels == 1].mean() >= 0.97
    # Label 0: different contours; the reference's soft overlap rule (M + mask < 1.8) and its
    # unchecked second seed let two contours touch now and then.
    assert reach[labels == 0].mean() <= 0.1
    # A marker on the wrong contour would give about the opposite on both counts.


def test_markers_and_ink(drawn) -> None:
    images, _, markers = drawn
    assert images.dtype == np.uint8 and images.shape == (200, 32, 32)
    assert (images.reshape(200, -1).max(1) == 255).all()  # min-max scaled, as imsave did
    rows = np.arange(200)[:, None]
    assert (images[rows, markers[..., 0], markers[..., 1]] > 0).all()
    # The two markers are never the same pixel (a tail and a head of 14-dash contours).
    assert (np.abs(markers[:, 0] - markers[:, 1]).max(1) >= 1).all()
    zeros = (images == 0).mean()
    assert 0.5 < zeros < 0.9, zeros  # sparse line drawings (reference: ~60 % zero pixels)


def test_deterministic_balanced_and_worker_independent(monkeypatch) -> None:
    monkeypatch.setattr(pathfinder, "CHUNK", 16)
    one, labels_one = generate_split(PATHFINDER32, 40, seed=3, split=0, workers=1)
    two, labels_two = generate_split(PATHFINDER32, 40, seed=3, split=0, workers=2)
    again, _ = generate_split(PATHFINDER32, 40, seed=3, split=0, workers=1)
    other, _ = generate_split(PATHFINDER32, 40, seed=4, split=0, workers=1)
    assert np.array_equal(one, two) and np.array_equal(labels_one, labels_two)
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)
    assert labels_one.sum() == 20  # every chunk (16, 16, 8) is balanced


def _request(tmp_path: Path, max_len: int = 1024) -> DataRequest:
    return DataRequest(max_len, n_train=32, n_dev=8, n_test=8, seed=0, cache_dir=tmp_path)


def test_loader_shapes_lengths_and_cache(tmp_path: Path, monkeypatch) -> None:
    data = load_pathfinder(_request(tmp_path), workers=1)
    for split, n in ((data.train, 32), (data.dev, 8), (data.test, 8)):
        tokens = split.inputs[0]
        assert tokens.shape == (n, 1024) and tokens.dtype == torch.int64
        assert int(tokens.min()) >= 0 and int(tokens.max()) == 255
        assert (split.lengths[0] == 1024).all()  # all pixels are real tokens, zeros included
        assert split.majority_rate() == 0.5
    assert not torch.equal(data.train.inputs[0][:8], data.dev.inputs[0])
    assert len(list((tmp_path / "pathfinder").glob("*.pt"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the cache holds this request")

    monkeypatch.setattr(pathfinder, "generate_split", fail)
    cached = load_pathfinder(_request(tmp_path), workers=1)
    assert torch.equal(cached.test.inputs[0], data.test.inputs[0])


def test_cache_key_covers_parameters(tmp_path: Path) -> None:
    base = pathfinder.pathfinder_cache_path(_request(tmp_path))
    other_seed = DataRequest(1024, 32, 8, 8, seed=1, cache_dir=tmp_path)
    assert pathfinder.pathfinder_cache_path(other_seed) != base
    assert pathfinder.pathfinder_cache_path(_request(tmp_path, 128 * 128)).name.startswith("pf128")


def test_unsupported_length_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"pathfinder\.data\.max_len=1024"):
        load_pathfinder(_request(tmp_path, 512))
