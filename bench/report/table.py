"""The table every report builds, and its renderings: Markdown (bold best, underlined second),
a LaTeX tabular (every LaTeX special character escaped) or CSV (no markup).

A `Table` is rows of `Cell`s: the text shown and, where ranked, the value ranked on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from tabulate import tabulate

MISSING = "n/a"
FORMATS = ("md", "latex", "csv")


@dataclass(frozen=True)
class Cell:
    """Plain text (unicode ±, ×, ‡ are translated per format); `value` is ranked when set;
    `rank` 1 renders bold, 2 underlined."""

    text: str
    value: float | None = None
    rank: int = 0


@dataclass(frozen=True)
class Table:
    name: str  # file stem, e.g. accuracy_smoke_tiny
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    notes: tuple[str, ...] = ()
    label_columns: int = 1  # leading text columns, left-aligned; the rest right-aligned


# Unicode the tables use, as LaTeX; every other special character escaped, in one pass (so an
# escape's own backslash or braces are never escaped again).
_LATEX_SYMBOLS = {
    "±": r"$\pm$",
    "×": r"$\times$",
    "‡": r"$^\ddagger$",
    "†": r"$^\dagger$",
    "°": r"$^\circ$",
}
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
}


def render(table: Table, fmt: str) -> str:
    """The table as Markdown (`md`), a LaTeX tabular (`latex`) or CSV (`csv`, no markup)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.headers)
        writer.writerows([c.text for c in row] for row in table.rows)
        return out.getvalue().rstrip("\n")
    mark = _markdown_cell if fmt == "md" else _latex_cell
    headers = [h if fmt == "md" else latex_text(h) for h in table.headers]
    body = tabulate(
        [[mark(c) for c in row] for row in table.rows],
        headers=headers,
        tablefmt="github" if fmt == "md" else "latex_raw",
        disable_numparse=True,
        colalign=("left",) * table.label_columns
        + ("right",) * (len(headers) - table.label_columns),
    )
    if fmt == "md":
        notes = "".join(f"\n\n{_markdown_note(n)}" for n in table.notes)
        return f"{table.title}.\n\n{body}{notes}"
    notes = "".join(f"\n{{\\footnotesize {latex_text(n)}}}\\par" for n in table.notes)
    return f"% {latex_text(table.title)}\n{body}{notes}"


def _markdown_cell(cell: Cell) -> str:
    return {1: f"**{cell.text}**", 2: f"<u>{cell.text}</u>"}.get(cell.rank, cell.text)


def _markdown_note(note: str) -> str:
    return "\\" + note if note.startswith("*") else note


def latex_text(text: str) -> str:
    """`text` with every LaTeX special character escaped and the table symbols typeset."""
    table = {**_LATEX_ESCAPES, **_LATEX_SYMBOLS}
    return "".join(table.get(c, c) for c in text)


def _latex_cell(cell: Cell) -> str:
    text = latex_text(cell.text)
    return {1: f"\\textbf{{{text}}}", 2: f"\\underline{{{text}}}"}.get(cell.rank, text)
