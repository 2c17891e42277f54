"""Pathfinder drawing primitives: generator parameters, antialiased dash and marker stamps,
candidate geometry, and a padded canvas of many images that stamps are pasted into at once.

The snake rules that use them are in `snakes.py` and `images.py`. Two generators
(`PathfinderParams.generator`, chosen with `--set pathfinder.data.generator=NAME`):

* "lra" (the default): stamps drawn as drewlinsley/pathfinder drew them (PIL line at 2x, dilated,
  Lanczos-resized) and its seed rule, under which most distractors are never drawn; see
  `lra_render.py`. This is most likely what LRA's released Pathfinder was made with (inferred).
* "intended": exact area coverage on a 4 x 4 subpixel grid (a dash is the segment widened by
  paddle_thickness / 2; its occupancy mask is the segment widened by paddle_thickness / 2 +
  margin) and every seed orientation allowed: what the reference meant to draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suites.lra.pathfinder import lra_render

GENERATORS = ("lra", "intended")
_SUB = 4  # subpixels per side for coverage antialiasing
COLLIDE = 1.8  # reference threshold on M + new mask
FREE = 0.3  # a pixel is free when its occupancy is at most this


@dataclass(frozen=True)
class PathfinderParams:
    """Generator parameters (names as in drewlinsley/pathfinder); defaults = LRA Pathfinder32."""

    size: int = 32
    padding: int = 1
    paddle_length: int = 2
    paddle_thickness: float = 0.5
    paddle_margins: tuple[int, ...] = (1,)  # one is drawn per image
    marker_radius: float = 1.5
    seed_distance: int = 7
    continuity: float = 1.0
    contour_length: int = 14
    distractor_length: int = 4  # contour_length // 3
    num_distractor_snakes: int = 5  # 20 // distractor_length
    snake_contrast: float = 2.0
    paddle_contrast: float = 0.75
    max_paddle_retrial: int = 2
    max_distractor_retrial: int = 4
    generator: str = GENERATORS[0]  # one of GENERATORS, the first ("lra") the default (docstring)

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(
                f"pathfinder generator {self.generator!r} is unknown; "
                f"use one of {', '.join(GENERATORS)}"
            )


def coverage(d2: np.ndarray, radius: float) -> np.ndarray:
    """Fraction of subpixels with squared distance <= radius^2; d2 is (..., S, S, _SUB^2)."""
    return (d2 <= radius * radius).mean(axis=-1)


def subpixel_grid(half: int) -> tuple[np.ndarray, np.ndarray]:
    """Subpixel y and x coordinates, each (2h+1, 2h+1, _SUB^2), around pixel (0, 0)."""
    offs = (np.arange(_SUB) + 0.5) / _SUB - 0.5
    px = np.arange(-half, half + 1, dtype=np.float64)
    y = px[:, None, None, None] + offs[None, None, :, None]
    x = px[None, :, None, None] + offs[None, None, None, :]
    y, x = np.broadcast_arrays(y, x)
    n = 2 * half + 1
    return y.reshape(n, n, -1), x.reshape(n, n, -1)


def _segment_d2(y: np.ndarray, x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Squared distance of points (y, x) (S, S, P) to segments (0,0)-(dy, dx): (K, S, S, P)."""
    dy, dx = dy[:, None, None, None], dx[:, None, None, None]
    t = np.clip((y * dy + x * dx) / (dy * dy + dx * dx), 0.0, 1.0)
    return (y - t * dy) ** 2 + (x - t * dx) ** 2


@dataclass(frozen=True)
class Stamps:
    """Dash stamps for one margin: line intensity, mask and core (K, S, S), anchor at centre."""

    half: int
    line: np.ndarray
    mask: np.ndarray
    core_offsets: np.ndarray  # (K, C, 2) offsets of the core pixels, padded by repeats


def _pad_offsets(offsets: list[np.ndarray]) -> np.ndarray:
    """(K, C, 2): each orientation's offsets, padded to the widest by repeating its first one."""
    offsets = [o if len(o) else np.zeros((1, 2), dtype=np.int64) for o in offsets]
    width = max(len(c) for c in offsets)
    return np.stack([np.concatenate([c, c[:1].repeat(width - len(c), 0)]) for c in offsets])


def _lra_stamps(p: PathfinderParams, margin: int, theta: np.ndarray) -> tuple[Stamps, np.ndarray]:
    """Stamps drawn by `lra_render.dash` for each orientation, and (K,) bool: the orientations
    whose seed structuring element the reference's dilation turns into "no free pixel"."""
    drawn = [lra_render.dash(p.paddle_length, p.paddle_thickness, margin, t) for t in theta]
    line = np.stack([d[0] for d in drawn]).astype(np.float32)
    mask = np.stack([d[1] for d in drawn]).astype(np.float32)
    taps = [lra_render.seed_taps(m, p.paddle_length, margin) for m in mask]
    blocked = np.array([lra_render.blocked(t, p.size) for t in taps])
    half = (line.shape[-1] - 1) // 2
    return Stamps(half, line, mask, _pad_offsets(taps)), blocked


def _stamps(p: PathfinderParams, margin: int, dy: np.ndarray, dx: np.ndarray) -> Stamps:
    half = p.paddle_length + int(np.ceil(p.paddle_thickness)) + margin
    y, x = subpixel_grid(half)
    d2 = _segment_d2(y, x, dy, dx)
    line = coverage(d2, p.paddle_thickness / 2)
    mask = coverage(d2, p.paddle_thickness / 2 + margin)
    cores = [np.argwhere(m >= 1.0) - half for m in mask]
    return Stamps(half, line.astype(np.float32), mask.astype(np.float32), _pad_offsets(cores))


@dataclass(frozen=True)
class Geometry:
    """Everything derived from the parameters and one margin."""

    margin: int
    seed_stamps: Stamps  # 360 integer-degree orientations, dash from the anchor outwards
    ext_stamps: Stamps  # one per candidate offset, dash from the candidate back to the pivot
    cand: np.ndarray  # (C, 2) candidate offsets from the pivot
    cand_angle: np.ndarray  # (C,) their orientations
    disk: np.ndarray  # (Dk, 2) offsets of the margin disc (dilation of M)
    seed_blocked: np.ndarray  # (360,) bool: seed orientations whose seed always fails ("lra")


def geometry(p: PathfinderParams, margin: int) -> Geometry:
    """Precompute stamps and candidate offsets for one paddle margin."""
    length = p.paddle_length
    theta = np.deg2rad(np.arange(-180, 180))
    step = length + margin
    ang = np.deg2rad(np.arange(0, 360, 360.0 / (2 * step * np.pi)))
    offs = np.stack([np.floor(step * np.sin(ang)), np.floor(step * np.cos(ang))], 1)
    cand = np.unique(offs.astype(np.int64), axis=0)
    cand_angle = np.arctan2(cand[:, 0], cand[:, 1])
    if p.generator == "lra":
        seed, blocked = _lra_stamps(p, margin, theta)
        # the reference's flip_by_pi: the dash runs from the candidate back to the pivot
        back = np.where(cand_angle < 0, cand_angle + np.pi, cand_angle - np.pi)
        ext, _ = _lra_stamps(p, margin, back)
    else:
        seed = _stamps(p, margin, length * np.sin(theta), length * np.cos(theta))
        ext = _stamps(p, margin, -length * np.sin(cand_angle), -length * np.cos(cand_angle))
        blocked = np.zeros(len(theta), dtype=bool)
    r = np.arange(-margin, margin + 1)
    disk = np.array([(a, b) for a in r for b in r if a * a + b * b <= margin * margin])
    return Geometry(margin, seed, ext, cand, cand_angle, disk, blocked)


class Canvas:
    """Occupancy mask and intensities of B images, padded by `pad` pixels on every side."""

    def __init__(self, p: PathfinderParams, batch: int, pad: int) -> None:
        self.p, self.pad, n = p, pad, p.size + 2 * pad
        # (B, H+2P, W+2P); everything outside the inner area counts as occupied
        self.mask = np.ones((batch, n, n), dtype=np.float32)
        inner = slice(pad + p.padding, pad + p.size - p.padding)
        self.mask[:, inner, inner] = 0.0
        self.image = np.zeros((batch, n, n), dtype=np.float32)

    def window(self, rows: np.ndarray, at: np.ndarray, half: int) -> tuple[np.ndarray, ...]:
        """Index arrays (b, y, x), each (R, S, S), of the stamp windows anchored at `at` (R, 2)."""
        r = np.arange(-half, half + 1)
        ys = at[:, 0, None, None] + self.pad + r[None, :, None]
        xs = at[:, 1, None, None] + self.pad + r[None, None, :]
        ys, xs = np.broadcast_arrays(ys, xs)
        return np.broadcast_to(rows[:, None, None], ys.shape), ys, xs

    def paste(self, target: np.ndarray, rows, at, stamps: np.ndarray, half: int) -> None:
        """target[rows] = max(target[rows], stamps) over each window."""
        idx = self.window(rows, at, half)
        target[idx] = np.maximum(target[idx], stamps)

    def inside(self, yx: np.ndarray) -> np.ndarray:
        return np.all((yx >= 0) & (yx < self.p.size), axis=-1)
