"""One colour per model, the same in every plot of every report: a colour depends on the
model's name only, never on which other models a report holds, so adding a model recolours
nothing. The registered models have fixed, distinct colours; any other name (a new model, a
sweep label such as `switch[experts=8]`) takes one from its name's hash. In a plot, the sweep
variants of one model take shades of that model's colour instead (`family_colors`), so a
model's variants read as one family. Imports no model."""

from __future__ import annotations

import colorsys
import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

# tab10, then Dark2: distinct qualitative colours
PALETTE = (
    *("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"),
    *("#bcbd22", "#17becf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"),
    *("#a6761d", "#666666"),
)
# The models registered today, each on its own palette entry; append, never reorder.
FIXED = {
    name: PALETTE[i]
    for i, name in enumerate(
        (
            *("full_attention", "linformer", "mixtral", "performer", "performer_relu"),
            *("switch", "uoe", "uoe_paper", "uoe_patch", "uoe_sample"),
        )
    )
}


def model_color(name: str) -> str:
    """The colour of a model (or sweep label), as '#rrggbb'."""
    if name in FIXED:
        return FIXED[name]
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]


def shades(base: str, n: int) -> list[str]:
    """`n` shades of one colour, dark to light: the hue and saturation of `base` kept, the
    lightness (HLS) spread over [0.25, 0.70] (one shade: `base` itself). The variants of one
    swept model take them in sweep order, so a family reads as one hue."""
    if n == 1:
        return [base]
    red, green, blue = (int(base[i : i + 2], 16) / 255 for i in (1, 3, 5))
    hue, _, saturation = colorsys.rgb_to_hls(red, green, blue)
    out = []
    for lightness in np.linspace(0.25, 0.70, n):
        rgb = colorsys.hls_to_rgb(hue, float(lightness), saturation)
        out.append("#" + "".join(f"{round(255 * c):02x}" for c in rgb))
    return out


def family_colors(families: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Colour of every label of `families` (base model -> its labels in sweep order, the plain
    base name first when the runs hold it): the plain model keeps `model_color(base)`, its sweep
    variants take `shades` of that colour in order."""
    out = {}
    for base, labels in families.items():
        variants = [label for label in labels if label != base]
        out.update(zip(variants, shades(model_color(base), len(variants)), strict=True))
        if base in labels:
            out[base] = model_color(base)
    return out
