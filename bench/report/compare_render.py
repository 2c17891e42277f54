"""`bench compare` as people read it, text or Markdown: the cause first (what differs between
the runs), then a summary by kind of figure (parameters x1.6-1.8, accuracy -0.4...+3.5 points),
then the REGRESSIONS and the IMPROVEMENTS, one line per kind of figure and verdict with its
range, the cells named when there are few; human units (MB, ms, MFLOP) through the catalog's
display, point deltas for fractions. Timings moved on a busy or shared machine and slower tails
are one count line. `verbose` adds the full table of every figure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from tabulate import tabulate

from bench.report.compare import INFO, NOT_GATED, Finding, gate
from bench.report.comparison import Comparison
from bench.report.display import with_unit
from suites.metric import Metric

MAX_NAMED = 3  # a line of findings names its cells when it has at most this many
WORDS = {"CHANGED": "changed", "WORSE": "worse", "SLOWER": "slower", "LARGER": "larger",
         "MISSING": "missing"}  # fmt: skip


def render_text(c: Comparison, verbose: bool = False) -> str:
    return "\n".join(_lines(c, verbose, markdown=False))


def render_markdown(c: Comparison, verbose: bool = False) -> str:
    return "\n".join(_lines(c, verbose, markdown=True))


def _lines(c: Comparison, verbose: bool, markdown: bool) -> list[str]:
    head = "### " if markdown else ""
    item = "- " if markdown else "  "
    lines = [f"{head}bench compare {c.base_dir} (BASE) -> {c.new_dir} (NEW)"]
    if markdown:
        lines.append("")
    lines += [f"{item}{line.strip()}" for line in c.cause.differences] or [
        f"{item}no difference of config, commit, environment or plan"
    ]
    if c.cause.same:
        lines.append(f"{item}{c.cause.same}")
    cells = f"{len(c.compared)} cell(s) compared"
    lines.append(f"{item}{'; '.join(x for x in (cells, c.only_base, c.only_new) if x)}")
    lines += [f"{item}{note}" for note in c.notes]
    summary = ", ".join(summary_parts(c)) or "nothing moved"
    lines.append(f"{'**summary**' if markdown else 'summary'}: {summary}")
    for title, found in (("REGRESSIONS", c.regressions), ("IMPROVEMENTS", c.improvements)):
        if found:
            lines += (
                ["", f"{head}{title} ({len(found)} figure(s))"]
                if markdown
                else [f"{title} ({len(found)} figure(s)):"]
            )
            lines += _grouped(c, found, markdown)
    quiet = _not_gated_line(c.findings)
    if quiet:
        lines.append(("\n" if markdown else "") + quiet)
    if verbose:
        lines += ["", _table(c)]
    lines.append(("\n" if markdown else "") + _rules(c))
    lines.append(_verdict_line(c))
    return lines


def _label(c: Comparison, f: Finding) -> str:
    """The kind of figure a line groups by: its catalog group ('time' for timings)."""
    if f.is_status:
        return "cells"
    metric = c.catalog.find(f.figure)
    if metric is None:
        return "other"
    if f.relative_to:
        return f"time ÷ {f.relative_to}"
    return "time" if metric.kind == "timing" else metric.group


def summary_parts(c: Comparison) -> list[str]:
    """Per kind of figure over the compared cells, the range of NEW/BASE (x1.6-1.8), or of the
    point change of fractions (-0.4...+3.5 points); kinds that did not move are left out."""
    values: dict[str, list[tuple[Metric, float, float]]] = defaultdict(list)
    for f in c.findings:
        metric = c.catalog.find(f.figure)
        if f.is_status or metric is None or f.base is None or f.new is None:
            continue
        if gate(metric) == INFO or metric.shape != "scalar" or metric.unit == "step":
            continue
        values[_label(c, f)].append((metric, f.base, f.new))
    parts = []
    for label, moved in values.items():
        if all(old == new for _, old, new in moved):
            continue
        if all(m.unit == "fraction" for m, _, _ in moved):
            deltas = [100 * (new - old) for _, old, new in moved]
            parts.append(f"{label} {min(deltas):+.1f}...{max(deltas):+.1f} points")
            continue
        ratios = [_time_factor(m, old, new) for m, old, new in moved if old and new]
        if ratios:
            parts.append(f"{label} {_ratio_range(ratios)}")
    return parts


def _ratio_range(ratios: Sequence[float]) -> str:
    low, high = f"{min(ratios):.2g}", f"{max(ratios):.2g}"
    return f"x{low}" if low == high else f"x{low}-{high}"


def _grouped(c: Comparison, found: Sequence[Finding], markdown: bool) -> list[str]:
    """One line per (kind of figure, verdict); its findings below it when few."""
    groups: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in found:
        groups[(_label(c, f), f.verdict)].append(f)
    width = max(len(label) for label, _ in groups)
    lines = []
    for (label, verdict), fs in groups.items():
        cells = len({f.cell for f in fs})
        change = _change(c, fs)
        lead = "- " if markdown else "  "
        lines.append(
            f"{lead}{label:<{width}}  {WORDS.get(verdict, verdict)}: {len(fs)} figure(s) in "
            f"{cells} cell(s){'  ' + change if change else ''}"
        )
        if len(fs) <= MAX_NAMED:
            lines += [f"{'  - ' if markdown else '      '}{_one(c, f)}" for f in fs]
    return lines


def _change(c: Comparison, fs: Iterable[Finding], as_time: bool = True) -> str:
    """The range of the findings' change: point deltas for fractions, else NEW/BASE, a rate's
    inverted (`_time_factor`) when `as_time`, and then said ("in time")."""
    moved = [f for f in fs if f.base is not None and f.new is not None]
    fractions = [f for f in moved if _metric_unit(c, f) == "fraction" and not f.relative_to]
    if moved and len(fractions) == len(moved):
        deltas = [100 * (f.new - f.base) for f in fractions]  # type: ignore[operator]
        low, high = min(deltas), max(deltas)
        return (
            f"{low:+.1f} points"
            if f"{low:.1f}" == f"{high:.1f}"
            else (f"{low:+.1f}...{high:+.1f} points")
        )
    metrics = [c.catalog.find(f.figure) for f in moved]
    ratios = [
        _time_factor(m, f.base, f.new) if as_time else f.new / f.base  # type: ignore[operator]
        for m, f in zip(metrics, moved, strict=True)
        if f.base and f.new
    ]
    if not ratios:
        return ""
    timings = as_time and all(m is not None and m.kind == "timing" for m in metrics)
    return _ratio_range(ratios) + (" in time" if timings else "")


def _time_factor(metric: Metric | None, base: float, new: float) -> float:
    """NEW/BASE, except for a timing whose higher value is better (a rate: steps/s), given as
    BASE/NEW: then every timing reads as a factor on time, x2 meaning twice as slow, and a
    group of rates and seconds has one range."""
    if metric is not None and metric.kind == "timing" and metric.direction == "higher":
        return base / new
    return new / base


def _metric_unit(c: Comparison, f: Finding) -> str:
    metric = c.catalog.find(f.figure)
    return metric.unit if metric else ""


def _one(c: Comparison, f: Finding) -> str:
    """'cell: label base -> new (change)' in the figure's display units."""
    if f.is_status:
        return f"{f.cell}: {f.figure}"
    metric = c.catalog.find(f.figure)
    label = metric.label if metric else f.figure
    if f.relative_to:
        label = f"{label} ÷ {f.relative_to}'s"
    if f.new is None:
        return f"{f.cell}: {label} absent in NEW (BASE {_shown(metric, f.base, f)})"
    change = _change(c, [f], as_time=False)  # the values are shown: their plain ratio
    return (
        f"{f.cell}: {label} {_shown(metric, f.base, f)} -> {_shown(metric, f.new, f)}"
        f"{' (' + change + ')' if change else ''}"
    )


def _shown(metric: Metric | None, value: float | None, f: Finding) -> str:
    if value is None:
        return "-"
    if metric is None or f.relative_to:
        return f"{value:.3g}"
    return with_unit(metric, value)


def _not_gated_line(findings: Sequence[Finding]) -> str:
    counts = defaultdict(int)
    for f in findings:
        if f.verdict in NOT_GATED:
            counts[f.verdict] += 1
    if not counts:
        return ""
    what = {"busy": "timing(s) of cells on a busy machine (load above the cores) moved",
            "shared": "timing(s) of cells that shared their device moved",
            "slower tail": "p90 tail(s) slower"}  # fmt: skip
    parts = [f"{n} {what[v]}" for v, n in counts.items()]
    return f"not gated: {'; '.join(parts)} (--verbose lists them)"


def _rules(c: Comparison) -> str:
    t = c.tolerances
    ratio = (
        f"timing ratios to {c.timing_reference} within x/÷ {t.ratio_factor:g} (CPU-time ratios "
        "on a busy machine too); "
        if c.timing_reference
        else ""
    )
    return (
        f"rules: deterministic exact; seeded fractions ±{t.acc_tol:g}, other seeded ±"
        f"{t.rel_tol:g} relative; {ratio}absolute timings outside base spread x/÷ {t.factor:g} "
        f"(not on a busy or shared machine; tails never); memory above base x {t.factor:g}"
    )


def _verdict_line(c: Comparison) -> str:
    regressions = c.regressions
    if regressions:
        cells = len({f.cell for f in regressions})
        return f"REGRESSION: {len(regressions)} figure(s) in {cells} cell(s)"
    return f"no regression in {len(c.compared)} compared cell(s)"


def _table(c: Comparison) -> str:
    """Every figure of every compared cell (--verbose)."""
    rows = [
        [
            f.cell,
            f"{f.figure} ÷ {f.relative_to}" if f.relative_to else f.figure,
            "" if f.base is None else f"{f.base:.6g}",
            "" if f.new is None else f"{f.new:.6g}",
            "" if not f.base or f.new is None else f"{f.new / f.base:.3f}",
            f.verdict,
        ]
        for f in c.findings
    ]
    return tabulate(
        rows,
        headers=["cell", "figure", "base", "new", "new/base", "verdict"],
        tablefmt="github",
        disable_numparse=True,
    )
