"""Pathfinder images, drawn many at a time: the snake rules of drewlinsley/pathfinder in numpy.

The algorithm and its parameters are those of `snakes2.from_wrapper` (described in
shared/reference/lra.md, "Pathfinder"); only the bookkeeping differs. Every step below runs on a
whole batch of images at once (one numpy op per step for all images, no per-image Python loop):

* Occupancy mask M: the border ring of `padding` pixels is occupied; every placed dash adds its
  mask (the dash dilated by `margin`, antialiased, values in [0, 1]).
* Target seeds: dash 1 gets an orientation uniform over integer degrees and a tail uniform over
  the free pixels at least 2 x seed_distance from the border where the dash's core fits; dash 2
  starts at seed_distance from tail 1 in a uniform integer-degree direction. A seed whose head or
  pivot leaves the image is redrawn (at most max_paddle_retrial + 1 tries).
* Extension: the next pivot is the last pivot moved by length + 2 x margin along the last
  orientation; candidates are the pixels on the circle of radius length + margin around it
  (one sample per pixel of arc, truncated to pixels, de-duplicated); a candidate's weight is
  (1 - dilate(M, disk margin)) x cos^2(min(continuity x |turn|, pi/2)); the dash runs from the
  sampled candidate back towards the pivot. A dash whose mask overlaps M (max(M + mask) >= 1.8)
  is redrawn, at most max_paddle_retrial + 1 times; then the snake fails. A snake's own last dash
  enters M only when the next one is placed (so consecutive dashes may touch).
* The two target snakes grow alternately, contour_length dashes each; if either fails the image
  restarts (here: it is discarded and another is drawn, which is the same rejection sampling).
  Then num_distractor_snakes snakes of distractor_length dashes, each retried up to
  max_distractor_retrial + 1 times and skipped after that; a distractor seed needs 1 % of the
  image free. Markers: discs of marker_radius on the tail of a random target snake and on the
  head of the same snake (label 1) or of the other one (label 0).
* Intensities: target dashes snake_contrast x paddle_contrast, distractors snake_contrast,
  markers 1; the image is min-max scaled to 0..255 (as scipy.misc.imsave did).

* No single-paddle clutter (use_single_paddles=False, as the wrapper that made the LRA sets).

Differences, all deliberate: antialiasing is exact area coverage on a 4 x 4 subpixel grid instead
of a PIL line at 2x followed by a Lanczos resize (the seed structuring element is the fully
covered core of the dash mask, where the reference used the pixels its resize left at 255), so
lines are crisper (about 80 % of pixels are 0 at 32 x 32; the reference's ~60 % includes Lanczos
ringing); labels are exactly balanced (a seeded permutation) instead of Bernoulli(0.5); a target
dash must also miss the other target's newest dash, and both targets' last dashes enter M before
the distractors (the reference checks against M alone, which lacks those dashes, so the two
contours could cross there); numpy's PCG64 replaces the global numpy/`random` state.

At 32 x 32 the dashes of one contour are 2 x margin = 2 px apart, and the soft overlap rule lets
two contours come about as close, so pixel connectivity alone does not decide the label; the
continuity of a contour does. tests/test_pathfinder.py checks labels by flood fill on a thicker
geometry where pixels do decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suites.lra.pathfinder import lra_render
from suites.lra.pathfinder.draw import (
    Canvas,
    Geometry,
    PathfinderParams,
    coverage,
    geometry,
    subpixel_grid,
)
from suites.lra.pathfinder.snakes import extend, place_seeds, seed_dash, start_snake

_MAX_TRY = 2048  # images tried at once (bounds memory: a few float32 canvases each)


def _targets(p: PathfinderParams, g: Geometry, n: int, pad: int, rng):
    """Try n images' two target snakes; returns the canvas, the snakes and (n,) ok."""
    canvas = Canvas(p, n, pad)
    rows = np.arange(n)
    ok, tail1, th1 = place_seeds(canvas, rows, g, rng, 2 * p.seed_distance)
    tail2 = np.zeros_like(tail1)
    th2 = np.zeros_like(th1)
    placed = np.zeros(n, dtype=bool)
    for _ in range(p.max_paddle_retrial + 1):
        todo = np.flatnonzero(~placed)
        away = np.deg2rad(rng.integers(0, 360, len(todo)))
        yx = np.rint(tail1[todo] + p.seed_distance * np.stack([np.sin(away), np.cos(away)], 1))
        th = rng.integers(0, 360, len(todo))
        head, pivot = seed_dash(p, th - 180, yx.astype(np.int64), g.margin)
        good = canvas.inside(head) & canvas.inside(pivot)
        placed[todo[good]] = True
        tail2[todo[good]], th2[todo[good]] = yx[good], th[good]
    ok &= placed
    contrast = p.snake_contrast * p.paddle_contrast
    snakes = [
        start_snake(canvas, rows, g, tail1, th1, contrast),
        start_snake(canvas, rows, g, tail2, th2, contrast),
    ]
    for _ in range(p.contour_length - 1):
        for s in (0, 1):
            live = np.flatnonzero(ok)
            sub = snakes[s].take(live)
            done = extend(canvas, live, g, rng, sub, contrast, snakes[1 - s].take(live))
            for f in sub.__dataclass_fields__:
                getattr(snakes[s], f)[live] = getattr(sub, f)
            ok[live[~done]] = False
    # Both pending dashes enter the mask before the distractors; the reference ("lra") adds
    # only the second snake's (two_snakes: np.maximum(current_mask, current_segment_masks[-1])).
    for s in snakes if p.generator == "intended" else snakes[1:]:
        canvas.paste(canvas.mask, rows[ok], s.last_at[ok], s.last_mask[ok], g.seed_stamps.half)
    return canvas, snakes, ok


def _distractors(canvas: Canvas, g: Geometry, rng) -> np.ndarray:
    """Add the distractor snakes; returns (n,) how many each image got."""
    p = canvas.p
    n = canvas.mask.shape[0]
    placed = np.zeros(n, dtype=np.int64)
    for _ in range(p.num_distractor_snakes):
        done = np.zeros(n, dtype=bool)
        for _ in range(p.max_distractor_retrial + 1):
            rows = np.flatnonzero(~done)
            if not len(rows):
                break
            saved_mask, saved_image = canvas.mask[rows].copy(), canvas.image[rows].copy()
            ok, tail, th = place_seeds(canvas, rows, g, rng, p.padding)
            snake = start_snake(canvas, rows[ok], g, tail[ok], th[ok], p.snake_contrast)
            live = np.flatnonzero(ok)
            for _ in range(p.distractor_length - 1):
                grown = extend(canvas, rows[live], g, rng, snake, p.snake_contrast, None)
                live, snake = live[grown], snake.take(grown)
            canvas.paste(canvas.mask, rows[live], snake.last_at, snake.last_mask, g.ext_stamps.half)
            failed = np.ones(len(rows), dtype=bool)
            failed[live] = False
            canvas.mask[rows[failed]] = saved_mask[failed]
            canvas.image[rows[failed]] = saved_image[failed]
            done[rows[live]] = True
        placed += done
    return placed


def _target_images(p: PathfinderParams, g: Geometry, n: int, pad: int, rng):
    """n canvases holding two complete target snakes, and the snakes' tails and heads.

    Most tries fail (about 6 % succeed at 32 x 32), so each round tries as many images as the
    success rate so far says are needed; the rate is computed from the draws themselves, so the
    result stays a function of the rng state.
    """
    masks, images, tails, heads = [], [], [[], []], [[], []]
    have, tried, succeeded = 0, 0, 0
    while have < n:
        rate = max((succeeded + 1) / (tried + 16), 0.01)
        size = min(int((n - have) / rate * 1.2) + 8, _MAX_TRY)
        canvas, snakes, ok = _targets(p, g, size, pad, rng)
        keep = np.flatnonzero(ok)[: n - have]
        tried, succeeded = tried + size, succeeded + int(ok.sum())
        masks.append(canvas.mask[keep])
        images.append(canvas.image[keep])
        for i in (0, 1):
            tails[i].append(snakes[i].tail[keep])
            heads[i].append(snakes[i].head[keep])
        have += len(keep)
    canvas = Canvas(p, 0, pad)
    canvas.mask, canvas.image = np.concatenate(masks), np.concatenate(images)
    return canvas, [np.concatenate(t) for t in tails], [np.concatenate(h) for h in heads]


def _marker_stamp(radius: float) -> tuple[int, np.ndarray]:
    half = int(np.ceil(radius)) + 1
    y, x = subpixel_grid(half)
    return half, coverage(y * y + x * x, radius)


@dataclass(frozen=True)
class Drawn:
    """images (n, size, size) uint8; labels (n,) int64 (exactly balanced when n is even); the
    marker centres (n, 2, 2) as (y, x) pixels (the reference's metadata has no such field;
    tests use it to check connectivity on the drawn image); distractors (n,) int64: the
    distractor snakes each image got."""

    images: np.ndarray
    labels: np.ndarray
    markers: np.ndarray
    distractors: np.ndarray


def draw_images(
    p: PathfinderParams, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n Pathfinder images, deterministic in `rng`'s state: (images, labels, markers) of
    `draw_pathfinder`."""
    drawn = draw_pathfinder(p, n, rng)
    return drawn.images, drawn.labels, drawn.markers


def draw_pathfinder(p: PathfinderParams, n: int, rng: np.random.Generator) -> Drawn:
    """n Pathfinder images and what was drawn in them, deterministic in `rng`'s state."""
    labels = rng.permutation(np.arange(n) % 2)
    markers = np.zeros((n, 2, 2), dtype=np.int64)
    margins = rng.choice(np.asarray(p.paddle_margins), n)
    images = np.zeros((n, p.size, p.size), dtype=np.uint8)
    distractors = np.zeros(n, dtype=np.int64)
    marker_half, marker = _marker_stamp(p.marker_radius)
    for margin in np.unique(margins):
        g = geometry(p, int(margin))
        pad = max(g.seed_stamps.half, marker_half) + 1
        want = np.flatnonzero(margins == margin)
        canvas, tails, heads = _target_images(p, g, len(want), pad, rng)
        distractors[want] = _distractors(canvas, g, rng)
        origin = rng.integers(0, 2, len(want))
        other = np.where(labels[want] == 1, origin, 1 - origin)
        rows = np.arange(len(want))
        start = np.where(origin[:, None] == 0, tails[0], tails[1])
        end = np.where(other[:, None] == 0, heads[0], heads[1])
        markers[want] = np.stack([start, end], 1)
        if p.generator == "lra":
            crop = canvas.image[:, pad : pad + p.size, pad : pad + p.size]
            crop = np.maximum(crop, lra_render.markers(p.size, markers[want], p.marker_radius))
            images[want] = np.stack([lra_render.bytescale(c) for c in crop])
            continue
        discs = np.broadcast_to(marker, (len(rows), *marker.shape))
        for at in (start, end):
            canvas.paste(canvas.image, rows, at, discs, marker_half)
        crop = canvas.image[:, pad : pad + p.size, pad : pad + p.size]
        scale = 255.0 / crop.reshape(len(rows), -1).max(1)
        images[want] = np.floor(crop * scale[:, None, None] + 0.4999).astype(np.uint8)
    return Drawn(images, labels.astype(np.int64), markers, distractors)
