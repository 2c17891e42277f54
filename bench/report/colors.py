"""One colour per model, the same in every plot of every report: a colour depends on the
model's name only, never on which other models a report holds, so adding a model recolours
nothing. The registered models have fixed, distinct colours; any other name (a new model, a
sweep label such as `switch[experts=8]`) takes one from its name's hash. Imports no model."""

from __future__ import annotations

import hashlib

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
