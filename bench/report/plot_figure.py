"""The canvas every plot shares: the one-column paper size and text style, a figure built with
the object API on the Agg canvas (no pyplot, no global backend switch), shell-friendly file
stems, a footer under everything drawn (`add_footer`: the provenance line), and saving as PNG
and PDF (each written atomically, cropped to what was drawn, the footer included)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox, TransformedBbox

from bench.report.file_names import file_stem
from suites.atomic import write_atomic

COLUMN_WIDTH_IN = 3.4  # one column of a two-column paper
STYLE = {"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6, "lines.linewidth": 1.2}

Plot = tuple[str, Figure]  # (file stem, figure)
FOOTER_GID = "footer"
FOOTER_PAD_IN = 0.03  # space above and below the footer's text


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


class LayoutLegend(Legend):
    """A figure legend placed "outside" the axes by constrained layout, anchored to the layout's
    rectangle rather than to the whole figure: a footer strip reserved below that rectangle
    (`add_footer`) stays clear of it. (Constrained layout reserves the bottom margin for a
    `supxlabel` *or* an outside legend, the larger of the two, and draws both at the figure's
    bottom edge: the protocol footer sat on top of the legend.) Built by
    `plot_parts.legend_outside`."""

    layout_rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # set by add_footer

    def get_bbox_to_anchor(self):
        # The rect is kept here, not read from the layout engine: a tight save turns the engine
        # off for its last draw.
        if self._bbox_to_anchor is not None:  # an explicit anchor wins, as in Legend
            return super().get_bbox_to_anchor()
        return TransformedBbox(Bbox.from_bounds(*self.layout_rect), self.parent.transFigure)


def add_footer(fig: Figure, text: str, fontsize: float) -> Text:
    """`text` in a strip added under everything else the figure draws: the figure grows by
    the strip's height and constrained layout lays the rest out above it (its `rect`), so
    axes, colour bars and outside legends (`LayoutLegend`) keep their size and never overlap
    the footer. Left-aligned; one of `fig.texts`, its gid FOOTER_GID. Notes already written at
    the figure's bottom edge (`fig.text(x, 0, ...)`) become the footer's first lines."""
    # a note a plot wrote at the figure's bottom edge (y = 0) would sit in the strip: it joins
    # the footer, above the protocol
    notes = [t for t in fig.texts if t.get_position()[1] <= 0.0 and t.get_gid() != FOOTER_GID]
    for note in notes:
        note.remove()
    text = "\n".join([*(note.get_text() for note in notes), text])
    footer = fig.text(0.0, 0.0, text, ha="left", va="bottom", fontsize=fontsize,
                      color="#444444", gid=FOOTER_GID)  # fmt: skip
    extent = footer.get_window_extent(fig.canvas.get_renderer())  # pixels at fig.dpi
    strip_in = extent.height / fig.dpi + 2 * FOOTER_PAD_IN
    width_in, height_in = fig.get_size_inches()
    total_in = height_in + strip_in
    fig.set_size_inches(width_in, total_in)
    engine = fig.get_layout_engine()
    if not isinstance(engine, ConstrainedLayoutEngine):
        raise ValueError("add_footer needs a figure with constrained layout (new_figure)")
    rect = (0.0, strip_in / total_in, 1.0, 1.0 - strip_in / total_in)
    engine.set(rect=rect)
    for legend in fig.legends:
        if isinstance(legend, LayoutLegend):
            legend.layout_rect = rect
    footer.set_position((FOOTER_PAD_IN / width_in, FOOTER_PAD_IN / total_in))
    return footer


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
