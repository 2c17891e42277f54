"""`bench compare`'s output in the format asked for (`render`), and `compare_runs`, the text of
two run directories' comparison with whether it regressed."""

from __future__ import annotations

from pathlib import Path

from bench.report import compare_formats, compare_render
from bench.report.compare import Tolerances
from bench.report.comparison import Comparison, compare_dirs
from models.errors import InputError

FORMATS = ("text", "md", "json", "junit")


def render(c: Comparison, fmt: str = "text", verbose: bool = False) -> str:
    """The comparison in one of FORMATS."""
    if fmt == "text":
        return compare_render.render_text(c, verbose)
    if fmt == "md":
        return compare_render.render_markdown(c, verbose)
    if fmt == "json":
        return compare_formats.render_json(c)
    if fmt == "junit":
        return compare_formats.render_junit(c)
    raise InputError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")


def compare_runs(
    base_dir: Path, new_dir: Path, tol: Tolerances, verbose: bool = False, **selection
) -> tuple[str, bool]:
    """The printed comparison of two run directories and whether anything regressed
    (`selection`: compare_dirs' keyword arguments)."""
    c = compare_dirs(base_dir, new_dir, tol, **selection)
    return render(c, "text", verbose), c.regressed
