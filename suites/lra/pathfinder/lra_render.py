"""Pathfinder drawn as LRA's data was most likely made: the rendering of drewlinsley/pathfinder
as its code ran (generator "lra" of `PathfinderParams`).

Three things differ from the "intended" generator (`draw.py`'s exact-coverage stamps):

* Dashes and their occupancy masks are drawn as the reference drew them: a 1-px PIL line at
  antialias_scale x, the mask that line dilated by a disc of margin x antialias_scale, both
  Lanczos-resized to 1x as scipy.misc.imresize did (min-max scaled to uint8 first, uint8 out).
  This leaves the resize halo (faint grey pixels around every dash) and ~200 grey levels.
* The seed rule. A snake's first dash looks for free tails by dilating the mask with a
  structuring element: the dash's fully covered mask pixels, drawn from (L+m+1, L+m+1) in a
  (2(L+m)+1)^2 window, so offset by one pixel from the kernel's anchor at the window centre.
  cv2.dilate's default border value for dilation is -DBL_MAX: an output pixel whose every
  kernel tap falls outside the image becomes -1.8e308, `find_available_coordinates` sees a
  negative minimum ("mystery") and reports no free pixel, and the seed fails without a retry.
  That happens for every orientation whose taps miss one of the four closed quadrants around
  the anchor, i.e. all but about 30 of the 360 integer-degree orientations (those pointing
  up-left, about -150 to -121 degrees). For the first target dash the image is then redrawn
  (so its orientation is uniform over the allowed ones); a distractor's attempt fails and is
  retried as any failed distractor, up to max_distractor_retrial + 1 times, so most
  distractors are never drawn (about 1.2 per image instead of about 4.7).
* Markers: a disc of marker_radius x antialias_scale on the whole image at antialias_scale x,
  centred on the corner of the marked pixel's first subpixel, Lanczos-resized (a soft blob
  offset by a quarter pixel), instead of exact coverage centred on the pixel.

The final image is min-max scaled to 0..255 with scipy.misc.imsave's rounding. That LRA's
released files were made this way is inferred (the default border value is OpenCV's since
long before LRA, and the reference code runs this way today), not checked against the released
PNGs. The remaining rules (targets checked against each other's newest dash, both targets'
last dashes in the mask before the distractors) stay as in `images.py`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

_AA = 2  # antialias_scale of the LRA Pathfinder32 settings


def bytescale(a: np.ndarray) -> np.ndarray:
    """scipy.misc.bytescale: uint8 passes through; floats are min-max scaled, +0.5, truncated."""
    if a.dtype == np.uint8:
        return a
    lo, hi = float(a.min()), float(a.max())
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return ((a - lo) * scale).clip(0, 255).__add__(0.5).astype(np.uint8)


def imresize(a: np.ndarray, size: int) -> np.ndarray:
    """scipy.misc.imresize(a, (size, size), 'lanczos'): uint8 in 0..255."""
    image = Image.fromarray(bytescale(a))
    return np.asarray(image.resize((size, size), resample=Image.Resampling.LANCZOS))


def _dilate(a: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation by a disc (which holds its centre, so the border never matters)."""
    out = a.copy()
    n = a.shape[0]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx > radius * radius:
                continue
            src = a[max(0, dy) : n + min(0, dy), max(0, dx) : n + min(0, dx)]
            dst = out[max(0, -dy) : n + min(0, -dy), max(0, -dx) : n + min(0, -dx)]
            np.maximum(dst, src, out=dst)
    return out


def dash(length: int, thickness: float, margin: int, theta: float):
    """The reference's dash from the window centre along theta (radians; y = sin, x = cos):
    line intensity and occupancy mask, each (2h+1, 2h+1) float32 in [0, 1], h = L+ceil(t)+m."""
    half = length + int(np.ceil(thickness)) + margin
    blown = 2 * half * _AA + 1
    c = half * _AA
    head_y = int(np.ceil(c + length * _AA * np.sin(theta)))
    head_x = int(np.ceil(c + length * _AA * np.cos(theta)))
    canvas = Image.new("F", (blown, blown), 0.0)
    ImageDraw.Draw(canvas).line(
        [(c, c), (head_x, head_y)], fill=255.0, width=round(thickness * _AA)
    )
    line = np.asarray(canvas, dtype=np.float32)
    mask = _dilate(line, margin * _AA).astype(np.uint8)
    size = 2 * half + 1
    return imresize(line, size) / np.float32(255), imresize(mask, size) / np.float32(255)


def seed_taps(mask: np.ndarray, length: int, margin: int) -> np.ndarray:
    """(T, 2) offsets from the kernel anchor of the reference's seed structuring element: the
    mask's fully covered pixels, shifted by +1 (drawn from L+m+1, anchored at L+m) and cropped
    to the (2(L+m)+1)^2 window."""
    half = (mask.shape[0] - 1) // 2
    taps = np.argwhere(mask >= 1.0) - half + 1
    reach = length + margin
    keep = np.all((taps >= -reach) & (taps <= reach), axis=1)
    return taps[keep]


def blocked(taps: np.ndarray, size: int) -> bool:
    """True when cv2.dilate with these taps leaves some pixel of a size x size image with every
    tap outside it (-DBL_MAX there): the reference's seed then finds no free pixel."""
    if not len(taps):
        return True
    yy, xx = np.mgrid[0:size, 0:size]
    ty = yy[..., None] + taps[:, 0]
    tx = xx[..., None] + taps[:, 1]
    inside = (ty >= 0) & (ty < size) & (tx >= 0) & (tx < size)
    return not bool(inside.any(-1).all())


def markers(size: int, centres: np.ndarray, radius: float) -> np.ndarray:
    """(N, size, size) float32 in [0, 1]: both markers of each image as the reference drew
    them; centres (N, K, 2) integer (y, x)."""
    out = np.zeros((len(centres), size, size), dtype=np.float32)
    n = size * _AA
    idx = np.arange(n)
    for i, points in enumerate(centres):
        for y, x in points:
            dy = (idx - y * _AA)[:, None]
            dx = (idx - x * _AA)[None, :]
            disc = (dy * dy + dx * dx <= (radius * _AA) ** 2).astype(np.float64)
            out[i] = np.maximum(out[i], imresize(disc, size) / np.float32(255))
    return out
