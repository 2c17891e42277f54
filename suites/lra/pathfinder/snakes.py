"""Pathfinder snakes, grown many images at a time: seeding a snake on free pixels, and extending
it dash by dash under the occupancy and continuity rules. `images.py` describes the whole
algorithm (the rules of drewlinsley/pathfinder) and composes images from these steps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suites.lra.pathfinder.draw import COLLIDE, FREE, Canvas, Geometry, PathfinderParams

_MIN_FREE_FRACTION = 0.01  # distractor seeds stop when less of the image is free


@dataclass
class Snake:
    """One snake per row: the pivot and orientation it grows from, its tips, its pending dash."""

    pivot: np.ndarray  # (R, 2) int
    angle: np.ndarray  # (R,)
    tail: np.ndarray  # (R, 2) where the snake started
    head: np.ndarray  # (R, 2) the far end of its newest dash
    last_at: np.ndarray  # (R, 2) anchor of the newest dash, not yet in the mask
    last_mask: np.ndarray  # (R, S, S) its mask stamp

    def take(self, keep: np.ndarray) -> Snake:
        return Snake(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def seed_dash(p: PathfinderParams, theta_deg: np.ndarray, tail: np.ndarray, margin: int):
    """Head and pivot of a seed dash: the dash runs tail -> head, the pivot is margin behind."""
    th = np.deg2rad(theta_deg)
    unit = np.stack([np.sin(th), np.cos(th)], 1)
    head = np.ceil(tail + p.paddle_length * unit).astype(np.int64)
    pivot = np.ceil(head - (p.paddle_length + margin) * unit).astype(np.int64)
    return head, pivot


def _free_tails(canvas: Canvas, rows: np.ndarray, core: np.ndarray, border: int) -> np.ndarray:
    """(R, H, W) bool: pixels where a dash with core offsets `core` (R, C, 2) finds M free."""
    p, pad = canvas.p, canvas.pad
    if border > p.padding:
        # The first target seed: a fresh canvas whose border is 2 x seed_distance wide, the same
        # for every row, so free maps are computed once per orientation.
        occ = np.ones((1, *canvas.mask.shape[1:]), dtype=np.float32)
        inner = slice(pad + border, pad + p.size - border)
        occ[:, inner, inner] = 0.0
        thetas, which = np.unique(core, axis=0, return_inverse=True)
        return _free_maps(occ, np.zeros(len(thetas), dtype=np.int64), thetas, p.size, pad)[
            which.reshape(-1)
        ]
    if p.generator == "lra":
        # cv2.dilate ignores taps outside the image (its -DBL_MAX border): only the image's
        # own pixels, the occupied padding ring included, can make a tail unfree.
        occ = canvas.mask[rows].copy()
        outside = np.ones(occ.shape[1:], dtype=bool)
        outside[pad : pad + p.size, pad : pad + p.size] = False
        occ[:, outside] = 0.0
        return _free_maps(occ, np.arange(len(rows)), core, p.size, pad)
    return _free_maps(canvas.mask, rows, core, p.size, pad)


def _free_maps(occ: np.ndarray, rows: np.ndarray, core: np.ndarray, size: int, pad: int):
    yy = np.arange(size)[None, :, None] + pad
    xx = np.arange(size)[None, None, :] + pad
    b = rows[:, None, None]
    free = np.ones((len(rows), size, size), dtype=bool)
    for c in range(core.shape[1]):
        k = core[:, c]
        free &= occ[b, yy + k[:, 0, None, None], xx + k[:, 1, None, None]] <= FREE
    return free


def place_seeds(canvas, rows, g: Geometry, rng, border: int):
    """Seed one dash per row on free pixels: (ok, tail, theta index), retrying off-image seeds."""
    p = canvas.p
    n = len(rows)
    ok = np.zeros(n, dtype=bool)
    tail = np.zeros((n, 2), dtype=np.int64)
    theta = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    if border == p.padding:  # distractors stop once less than 1 % of the image is free
        inner = canvas.mask[rows, canvas.pad : -canvas.pad, canvas.pad : -canvas.pad]
        alive &= (inner <= FREE).mean((1, 2)) >= _MIN_FREE_FRACTION
    for _ in range(p.max_paddle_retrial + 1):
        todo = np.flatnonzero(alive & ~ok)
        if not len(todo):
            break
        if border > p.padding:
            # The first target seed: a blocked orientation makes the reference redraw the whole
            # image, so the image's orientation is uniform over the allowed ones.
            allowed = np.flatnonzero(~g.seed_blocked)
            th = allowed[rng.integers(0, len(allowed), len(todo))]  # index into -180..179 deg
        else:
            th = rng.integers(0, 360, len(todo))
            # A blocked orientation fails this distractor attempt (the reference's "mystery").
            gone = g.seed_blocked[th]
            alive[todo[gone]] = False
            todo, th = todo[~gone], th[~gone]
            if not len(todo):
                continue
        free = _free_tails(canvas, rows[todo], g.seed_stamps.core_offsets[th], border)
        flat = free.reshape(len(todo), -1)
        count = flat.sum(1)
        pick = np.minimum((rng.random(len(todo)) * count).astype(np.int64), count - 1)
        idx = np.argmax(np.cumsum(flat, 1) > pick[:, None], 1)
        yx = np.stack([idx // p.size, idx % p.size], 1)
        head, pivot = seed_dash(p, th - 180, yx, g.margin)
        good = (count > 0) & canvas.inside(head) & canvas.inside(pivot)
        alive[todo[count == 0]] = False  # the reference gives up when nothing is free
        ok[todo[good]] = True
        tail[todo[good]], theta[todo[good]] = yx[good], th[good]
    return ok, tail, theta


def start_snake(canvas, rows, g, tail, theta, contrast) -> Snake:
    """Draw seed dashes (intensity only; their masks are pending) and return the snakes."""
    s = g.seed_stamps
    canvas.paste(canvas.image, rows, tail, contrast * s.line[theta], s.half)
    head, pivot = seed_dash(canvas.p, theta - 180, tail, g.margin)
    return Snake(pivot, np.deg2rad(theta - 180.0), tail, head, tail.copy(), s.mask[theta])


def _occupancy(canvas: Canvas, rows, ys, xs, other: Snake | None) -> np.ndarray:
    """M at image pixels (ys, xs) (R, ...) of `rows`, with `other`'s pending dash mask added."""
    pad = canvas.pad
    expand = (slice(None),) + (None,) * (ys.ndim - 1)
    occ = canvas.mask[rows[expand], ys + pad, xs + pad]
    if other is None:
        return occ
    half = (other.last_mask.shape[-1] - 1) // 2
    dy = ys - other.last_at[:, 0][expand] + half
    dx = xs - other.last_at[:, 1][expand] + half
    near = (dy >= 0) & (dy <= 2 * half) & (dx >= 0) & (dx <= 2 * half)
    b = np.arange(len(rows))[expand]
    pending = other.last_mask[b, np.clip(dy, 0, 2 * half), np.clip(dx, 0, 2 * half)]
    return np.maximum(occ, np.where(near, pending, 0.0))


def extend(canvas, rows, g, rng, snake: Snake, contrast: float, other: Snake | None):
    """Add one dash to each row's snake; returns (R,) ok. `other`'s pending dash also blocks."""
    p = canvas.p
    n = len(rows)
    step = p.paddle_length + 2 * g.margin
    new_pivot = np.ceil(
        snake.pivot + step * np.stack([np.sin(snake.angle), np.cos(snake.angle)], 1)
    ).astype(np.int64)
    cands = new_pivot[:, None, :] + g.cand[None]  # (R, C, 2)
    inb = canvas.inside(cands)
    hi = p.size + canvas.pad - 1
    yy = np.clip(cands[..., 0, None] + g.disk[:, 0], -canvas.pad, hi)  # (R, C, Dk)
    xx = np.clip(cands[..., 1, None] + g.disk[:, 1], -canvas.pad, hi)
    dilated = _occupancy(canvas, rows, yy, xx, other).max(-1)  # (R, C)
    turn = np.abs(g.cand_angle[None] - snake.angle[:, None])
    turn = np.minimum(turn, 2 * np.pi - turn)
    weight = np.maximum(np.cos(np.minimum(turn * p.continuity, np.pi / 2)), 0.0) ** 2
    pmf = np.where(inb, (1.0 - dilated) * weight, 0.0)
    total = pmf.sum(1)
    live = total >= 1e-4
    cmf = np.cumsum(pmf, 1) / np.where(live, total, 1.0)[:, None]
    chosen = np.full(n, -1)
    ext = g.ext_stamps
    for _ in range(p.max_paddle_retrial + 1):
        todo = np.flatnonzero(live & (chosen < 0))
        if not len(todo):
            break
        c = np.argmax(cmf[todo] > rng.random(len(todo))[:, None], 1)
        at = cands[todo, c]
        _, ys, xs = canvas.window(todo, at - canvas.pad, ext.half)
        near = None if other is None else other.take(todo)
        occ = _occupancy(canvas, rows[todo], ys, xs, near)
        hit = (occ + ext.mask[c]).reshape(len(todo), -1).max(1) >= COLLIDE
        chosen[todo[~hit]] = c[~hit]
    ok = chosen >= 0
    r, c = rows[ok], chosen[ok]
    at = cands[ok, c]
    canvas.paste(canvas.image, r, at, contrast * ext.line[c], ext.half)
    canvas.paste(canvas.mask, r, snake.last_at[ok], snake.last_mask[ok], ext.half)
    snake.pivot[ok], snake.angle[ok], snake.head[ok] = new_pivot[ok], g.cand_angle[c], at
    snake.last_at[ok], snake.last_mask[ok] = at, ext.mask[c]
    return ok
