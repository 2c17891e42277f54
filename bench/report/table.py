"""The table every report builds, and its renderings: Markdown (bold best, underlined second) or
a LaTeX `table` float (caption, label, booktabs rules, every special character escaped; a table
with more than `LATEX_VALUE_COLUMNS` value columns is stacked as several tabulars that each fit
one column of a two-column paper). CSV is data, not a rendering: `bench.report.csv_data`.

A `Table` is rows of `Cell`s: the text shown and, where ranked, the value ranked on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from tabulate import tabulate

MISSING = "n/a"
FORMATS = ("md", "latex")
LATEX_VALUE_COLUMNS = 4  # beside the label columns, so a stacked part fits one paper column


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
    "§": r"$^\S$",
    "≈": r"$\approx$",
    "¶": r"$^\P$",
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
    """The table as Markdown (`md`) or a LaTeX table float (`latex`, needs booktabs)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "latex":
        return _latex(table)
    body = tabulate(
        [[_markdown_cell(c) for c in row] for row in table.rows],
        headers=list(table.headers),
        tablefmt="github",
        disable_numparse=True,
        colalign=("left",) * table.label_columns
        + ("right",) * (len(table.headers) - table.label_columns),
    )
    notes = "".join(f"\n\n{_markdown_note(n)}" for n in table.notes)
    return f"{table.title}.\n\n{body}{notes}"


def table_csv(table: Table) -> str:
    """The table's headers and cell texts as CSV (notes left out)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows([c.text for c in row] for row in table.rows)
    return out.getvalue().rstrip("\n")


def _latex(table: Table) -> str:
    """`table` float: caption and label first, booktabs tabular(s), notes in footnote size."""
    labels, width = table.label_columns, len(table.headers)
    parts = [
        list(range(start, min(start + LATEX_VALUE_COLUMNS, width)))
        for start in range(labels, width, LATEX_VALUE_COLUMNS)
    ] or [[]]
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{latex_text(table.title)}.}}",
        f"\\label{{tab:{table.name.replace('_', '-')}}}",
    ]
    for index, value_columns in enumerate(parts):
        columns = [*range(labels), *value_columns]
        if index:
            lines.append("\\medskip")
        lines.append(f"\\begin{{tabular}}{{{'l' * labels}{'r' * len(value_columns)}}}")
        lines.append("\\toprule")
        lines.append(" & ".join(latex_text(table.headers[c]) for c in columns) + " \\\\")
        lines.append("\\midrule")
        lines += [" & ".join(_latex_cell(row[c]) for c in columns) + " \\\\" for row in table.rows]
        lines.append("\\bottomrule")
        lines.append("\\end{tabular}")
        if index < len(parts) - 1:
            lines.append("")  # a paragraph break: the next part goes below, not beside
    lines += [f"\\par{{\\footnotesize {latex_text(n)}}}" for n in table.notes]
    lines.append("\\end{table}")
    return "\n".join(lines)


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
