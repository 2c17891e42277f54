"""`bench compare BASE NEW`: match the cells of two runs, print the figures that changed (every
figure with `verbose`) with their ratios, and say which cells and figures regressed.

How each figure is gated comes from the metric catalog (`bench.metric_catalog`: its kind and
direction), never from its name:
- deterministic (parameters, FLOPs, the best step): must be equal. Any change fails, in either
  direction: the code now computes something else, and the reference must be refreshed on
  purpose (results/README.md).
- seeded (accuracy, loss): a fraction within `acc_tol` (absolute), anything else within
  `rel_tol` (relative); either direction fails.
- timing: noise unless NEW falls outside BASE's spread widened by `factor`: [min(samples) /
  factor, max(samples) * factor] of the figure's stored samples (for a rate, 1 / the sampled
  seconds), else [base / factor, base * factor]. Only the worse side (by the figure's direction)
  fails. A timing the catalog marks not gated (a p90 tail) is printed (`slower tail`), never
  failed: one stall of a shared CI machine moves a p90 of a few dozen samples by 5x while the
  median holds.
- memory: fails when NEW > BASE * factor.
- environment, and a figure the catalog lacks: printed, not gated.
Timing figures of a cell that shared its device with other cells in either run
(`placement.device_shared`, `bench run --share-device`) that moved beyond the band are printed
as `shared`, and those of a cell that ran on a busy machine in either run (`machine_busy`: load
above the core count) as `busy`; neither is gated.
Cells are matched by their whole identity, sweep variant included.
A cell `ok` in BASE that is missing or not `ok` in NEW is a regression; so is a gated figure that
BASE has and NEW lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.manifest import read_manifest
from bench.metric_catalog import HARNESS, MetricCatalog, sampled_range
from bench.records import BUSY_KEY, CellId, Record, read_records
from bench.report.frame import scalar_metrics
from models.errors import InputError
from suites.metric import Metric

ENVIRONMENT_KEYS = (
    *("cpu", "cpu_capability", "gpu_name", "torch", "cuda", "torch_threads", "cpu_count"),
)

# How a figure is gated (`gate`), from its catalog entry.
EXACT, TOLERANCE, BAND, TAIL, MEMORY, INFO = "exact", "tolerance", "band", "tail", "memory", "info"
TIMINGS = (BAND, TAIL)
REGRESSIONS = ("CHANGED", "SLOWER", "LARGER", "MISSING")
UNCHANGED = ("same", "~", "info")  # left out of the printed table unless verbose


@dataclass(frozen=True)
class Tolerances:
    """factor: timing and memory slack (asv's --factor); acc_tol: absolute tolerance of a seeded
    fraction (0.01 = one percentage point); rel_tol: relative tolerance of other seeded figures."""

    factor: float = 1.1
    acc_tol: float = 0.0
    rel_tol: float = 0.0

    def __post_init__(self) -> None:
        if self.factor < 1.0 or self.acc_tol < 0 or self.rel_tol < 0:
            raise InputError("--factor must be >= 1 and the tolerances >= 0")


@dataclass(frozen=True)
class Finding:
    cell: str
    figure: str
    base: float | None
    new: float | None
    # same | ~ | faster | smaller | slower tail | shared | busy | CHANGED | SLOWER | LARGER |
    # MISSING | new | info
    verdict: str

    @property
    def regression(self) -> bool:
        return self.verdict in REGRESSIONS

    @property
    def ratio(self) -> float | None:
        if self.base is None or self.new is None or self.base == 0:
            return None
        return self.new / self.base


def gate(metric: Metric | None) -> str:
    """How a figure is compared: by its catalog kind (INFO for a figure the catalog lacks)."""
    if metric is None or metric.kind == "environment":
        return INFO
    if metric.kind == "deterministic":
        return EXACT
    if metric.kind == "seeded":
        return TOLERANCE
    if metric.kind == "timing":
        return BAND if metric.gated else TAIL
    return MEMORY


def compare_records(
    base: Sequence[Record],
    new: Sequence[Record],
    tol: Tolerances,
    catalog: MetricCatalog = HARNESS,
) -> list[Finding]:
    """Findings for every cell of BASE (in its order), then the cells only NEW has."""
    new_by_cell: dict[CellId, Record] = {r.cell: r for r in new}
    base_cells = {r.cell for r in base}
    findings: list[Finding] = []
    for b in base:
        cell = str(b.cell)
        n = new_by_cell.get(b.cell)
        if b.status != "ok":
            if n is not None and n.status == "ok":
                findings.append(Finding(cell, f"status {b.status} -> ok", None, None, "new"))
            continue
        if n is None or n.status != "ok":
            what = "absent" if n is None else f"{n.status}: {n.reason}"
            findings.append(Finding(cell, f"status ok -> {what}", None, None, "MISSING"))
            continue
        findings += _compare_figures(cell, b, n, tol, catalog)
    for n in new:
        if n.cell not in base_cells:
            findings.append(
                Finding(str(n.cell), f"status {n.status} (not in base)", None, None, "new")
            )
    return findings


def _compare_figures(
    cell: str, b: Record, n: Record, tol: Tolerances, catalog: MetricCatalog
) -> list[Finding]:
    base_values, new_values = scalar_metrics(b), scalar_metrics(n)
    untimed = _why_timings_are_noise(b) or _why_timings_are_noise(n)
    findings = []
    for figure, old in base_values.items():
        metric = catalog.find(figure)
        if figure not in new_values:
            verdict = "info" if gate(metric) == INFO else "MISSING"
            findings.append(Finding(cell, figure, old, None, verdict))
            continue
        verdict = _verdict(metric, old, new_values[figure], b.metrics, tol)
        if untimed and gate(metric) in TIMINGS and verdict != "~":
            verdict = untimed  # moved beyond the band, but not on a machine that can tell
        findings.append(Finding(cell, figure, old, new_values[figure], verdict))
    for figure in new_values.keys() - base_values.keys():
        findings.append(Finding(cell, figure, None, new_values[figure], "new"))
    return findings


def _why_timings_are_noise(record: Record) -> str:
    """'shared' or 'busy' when the cell's timings cannot be gated, else ''."""
    if record.placement.get("device_shared"):
        return "shared"
    if record.metrics.get(BUSY_KEY):
        return "busy"
    return ""


def _verdict(
    metric: Metric | None, old: float, new: float, base_metrics: Mapping[str, Any], tol: Tolerances
) -> str:
    how = gate(metric)
    if how == INFO or metric is None:
        return "info"
    if how == EXACT:
        return "same" if new == old else "CHANGED"
    if how == TOLERANCE:
        if metric.unit == "fraction":
            return "same" if abs(new - old) <= tol.acc_tol else "CHANGED"
        return "same" if math.isclose(new, old, rel_tol=tol.rel_tol, abs_tol=0.0) else "CHANGED"
    if how in TIMINGS:
        low, high = sampled_range(metric, base_metrics) or (old, old)
        low, high = low / tol.factor, high * tol.factor
        if low <= new <= high:
            return "~"
        worse = new < low if metric.direction == "higher" else new > high
        if not worse:
            return "faster"
        return "slower tail" if how == TAIL else "SLOWER"
    if new > old * tol.factor:
        return "LARGER"
    return "smaller" if new < old / tol.factor else "~"


def environment_warnings(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Loud warnings when the runs' machines or versions (their manifests' `environment`) differ:
    timings are then not comparable."""
    b, n = base, new
    return [
        f"WARNING: environment differs: {key} {b.get(key)!r} (base) vs {n.get(key)!r} (new); "
        "timing ratios compare different setups"
        for key in ENVIRONMENT_KEYS
        if key in b and key in n and b[key] != n[key]
    ]


def compare_runs(
    base_dir: Path, new_dir: Path, tol: Tolerances, verbose: bool = False
) -> tuple[str, bool]:
    """The printed comparison of two run directories and whether anything regressed: the
    figures that changed (regressions, improvements, new ones), or every figure if `verbose`."""
    base = read_records(base_dir)
    base_manifest, new_manifest = read_manifest(base_dir), read_manifest(new_dir)
    catalog = HARNESS.with_metrics([*base_manifest.suite_metrics, *new_manifest.suite_metrics])
    findings = compare_records(base, read_records(new_dir), tol, catalog)
    warnings = environment_warnings(base_manifest.environment, new_manifest.environment)
    shown = findings if verbose else [f for f in findings if _worth_showing(f, catalog)]
    rows = [
        [
            f.cell,
            f.figure,
            _number(f.base),
            _number(f.new),
            "" if f.ratio is None else f"{f.ratio:.3f}",
            f.verdict,
        ]
        for f in shown
    ]
    table = tabulate(
        rows,
        headers=["cell", "figure", "base", "new", "new/base", "verdict"],
        tablefmt="github",
        disable_numparse=True,
    )
    regressions = [f for f in findings if f.regression]
    unknown = sorted({f.figure for f in findings if _uncatalogued(f, catalog)})
    hidden = len(findings) - len(shown)
    lines = [*warnings]
    if unknown:
        lines.append(
            f"WARNING: {len(unknown)} figure(s) not in the metric catalog, printed but not "
            f"gated: {', '.join(unknown)}"
        )
    if rows:
        lines += [table, ""]
    if hidden:
        lines.append(
            f"{hidden} figure(s) unchanged or within noise, not listed (--verbose lists all)"
        )
    rule = (
        f"rules: deterministic figures exact; seeded fractions within {tol.acc_tol:g} absolute, "
        f"other seeded figures within {tol.rel_tol:g} relative; timings outside base spread x/÷ "
        f"{tol.factor:g} (tails printed, not gated; busy or shared cells not gated); memory "
        f"above base x {tol.factor:g}"
    )
    lines.append(rule)
    if regressions:
        cells = sorted({f.cell for f in regressions})
        lines.append(f"REGRESSION: {len(regressions)} figure(s) in {len(cells)} cell(s):")
        lines += [f"  {f.cell}: {f.figure} {f.verdict}" for f in regressions]
    else:
        ok = sum(r.status == "ok" for r in base)
        lines.append(f"no regression in {len(base)} cell(s) of base ({ok} ok)")
    return "\n".join(lines), bool(regressions)


def _uncatalogued(finding: Finding, catalog: MetricCatalog) -> bool:
    return not finding.figure.startswith("status ") and finding.figure not in catalog


def _worth_showing(finding: Finding, catalog: MetricCatalog) -> bool:
    """Changed, regressed, or new and gated: not an ungated figure (e.g. the load average)."""
    if finding.figure.startswith("status "):  # a cell that changed status, or a new cell
        return True
    return finding.verdict not in UNCHANGED and gate(catalog.find(finding.figure)) != INFO


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
