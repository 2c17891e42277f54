"""The canvas every plot shares: the one-column paper size and text style, a figure built with
the object API on the Agg canvas (no pyplot, no global backend switch), shell-friendly file
stems, and saving as PNG and PDF (each written atomically, cropped to what was drawn, the
provenance footer included)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.report.file_names import file_stem
from suites.atomic import write_atomic

COLUMN_WIDTH_IN = 3.4  # one column of a two-column paper
STYLE = {"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6, "lines.linewidth": 1.2}

Plot = tuple[str, Figure]  # (file stem, figure)


def styled(build: Callable[..., list[Plot]]) -> Callable[..., list[Plot]]:
    """Build the figures under STYLE: text sizes are fixed when each artist is created."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> list[Plot]:
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def new_figure(rows: int = 1, cols: int = 1, height: float = 2.4) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(COLUMN_WIDTH_IN, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write `file_stem(stem)`.png (200 dpi) and .pdf, each atomically (a kill never leaves a
    truncated plot); return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(stem)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    with matplotlib.rc_context(STYLE):
        # tight: the provenance footer under the axes (`bench.report.provenance`) is kept whole
        tight = {"bbox_inches": "tight", "pad_inches": 0.03}
        write_atomic(paths[0], lambda f: fig.savefig(f, format="png", dpi=200, **tight))
        write_atomic(paths[1], lambda f: fig.savefig(f, format="pdf", **tight))
    return paths
