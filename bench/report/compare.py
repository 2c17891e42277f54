"""`bench compare BASE NEW`: match the cells of two runs, print the figures that changed (every
figure with `verbose`) with their ratios, and say which cells and figures regressed.

Figures are classed by their name (the record conventions), so new metrics are handled without
a list here:
- deterministic: parameter counts, FLOPs, `best_step` must be equal; accuracies within
  `acc_tol` (absolute); other losses within `rel_tol` (relative). Any change fails, in either
  direction: a deterministic figure that moves means the code changed what it computes, and the
  reference must be refreshed on purpose (results/README.md).
- timing (`*_s`, `*_s_median`; rates `*_per_s`, `*_per_cpu_s`): noise unless NEW falls
  outside BASE's spread widened by `factor`: [min(samples) / factor, max(samples) * factor]
  when BASE stored `<figure>_samples`, else [base / factor, base * factor]. Only the slow side
  fails.
- timing tail (`*_s_p90`): the same band, printed (`slower tail`) but never gated. One stall
  of a shared CI machine moves a p90 of a few dozen samples by 5x while the median holds
  (linformer's smoke train step: p90 4.8x, median within the spread), so a tail figure says
  something about the machine, not the code.
- memory (`memory_*_bytes`): fails when NEW > BASE * factor.
- anything else numeric is printed, not gated.
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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench.records import BUSY_KEY, CellId, Record, read_manifest, read_records
from bench.report.frame import scalar_metrics

ENVIRONMENT_KEYS = (
    *("cpu", "cpu_capability", "gpu_name", "torch", "cuda", "torch_threads", "cpu_count"),
)

EXACT, ACCURACY, FLOAT, TIME_LOW, TIME_HIGH, TIME_TAIL, MEMORY, INFO = (
    "exact",
    "accuracy",
    "float",
    "time (lower is better)",
    "time (higher is better)",
    "time tail (printed, not gated)",
    "memory",
    "info",
)
TIMINGS = (TIME_LOW, TIME_HIGH, TIME_TAIL)
REGRESSIONS = ("CHANGED", "SLOWER", "LARGER", "MISSING")
UNCHANGED = ("same", "~", "info")  # left out of the printed table unless verbose


@dataclass(frozen=True)
class Tolerances:
    """factor: timing and memory slack (asv's --factor); acc_tol: absolute accuracy tolerance
    (0.01 = one percentage point); rel_tol: relative tolerance of other deterministic floats."""

    factor: float = 1.1
    acc_tol: float = 0.0
    rel_tol: float = 0.0

    def __post_init__(self) -> None:
        if self.factor < 1.0 or self.acc_tol < 0 or self.rel_tol < 0:
            raise ValueError("--factor must be >= 1 and the tolerances >= 0")


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


def kind(figure: str) -> str:
    """The comparison class of a figure, from its name."""
    if figure.startswith(("params_", "flops_")) or figure == "best_step":
        return EXACT
    if figure == "accuracy" or figure.endswith("_accuracy"):
        return ACCURACY
    if "loss" in figure:
        return FLOAT
    if re.search(r"_per_([a-z]+_)?s$", figure):  # a rate: examples_per_s, steps_per_cpu_s
        return TIME_HIGH
    if figure.endswith("_s_p90"):
        return TIME_TAIL
    if re.search(r"_s(_median)?$", figure):
        return TIME_LOW
    if figure.startswith("memory_") and figure.endswith("_bytes"):
        return MEMORY
    return INFO


def compare_records(
    base: Sequence[Record], new: Sequence[Record], tol: Tolerances
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
        findings += _compare_figures(cell, b, n, tol)
    for n in new:
        if n.cell not in base_cells:
            findings.append(
                Finding(str(n.cell), f"status {n.status} (not in base)", None, None, "new")
            )
    return findings


def _compare_figures(cell: str, b: Record, n: Record, tol: Tolerances) -> list[Finding]:
    base_values, new_values = scalar_metrics(b), scalar_metrics(n)
    untimed = _why_timings_are_noise(b) or _why_timings_are_noise(n)
    findings = []
    for figure, old in base_values.items():
        if figure not in new_values:
            verdict = "info" if kind(figure) == INFO else "MISSING"
            findings.append(Finding(cell, figure, old, None, verdict))
            continue
        samples = b.metrics.get(_samples_name(figure))
        verdict = _verdict(figure, old, new_values[figure], samples, tol)
        if untimed and kind(figure) in TIMINGS and verdict != "~":
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


def _samples_name(figure: str) -> str:
    return re.sub(r"_(median|p90)$", "", figure) + "_samples"


def _verdict(figure: str, old: float, new: float, samples: Any, tol: Tolerances) -> str:
    k = kind(figure)
    if k == EXACT:
        return "same" if new == old else "CHANGED"
    if k == ACCURACY:
        return "same" if abs(new - old) <= tol.acc_tol else "CHANGED"
    if k == FLOAT:
        return "same" if math.isclose(new, old, rel_tol=tol.rel_tol, abs_tol=0.0) else "CHANGED"
    if k in TIMINGS:
        spread = samples if isinstance(samples, list) and samples else [old]
        low, high = min(spread) / tol.factor, max(spread) * tol.factor
        if low <= new <= high:
            return "~"
        slower = new < low if k == TIME_HIGH else new > high
        if not slower:
            return "faster"
        return "slower tail" if k == TIME_TAIL else "SLOWER"
    if k == MEMORY:
        if new > old * tol.factor:
            return "LARGER"
        return "smaller" if new < old / tol.factor else "~"
    return "info"


def environment_warnings(base_manifest: Mapping, new_manifest: Mapping) -> list[str]:
    """Loud warnings when the runs' machines or versions differ (timings are not comparable)."""
    b, n = base_manifest.get("environment", {}), new_manifest.get("environment", {})
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
    findings = compare_records(base, read_records(new_dir), tol)
    warnings = environment_warnings(read_manifest(base_dir), read_manifest(new_dir))
    shown = findings if verbose else [f for f in findings if _worth_showing(f)]
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
    hidden = len(findings) - len(shown)
    lines = [*warnings]
    if rows:
        lines += [table, ""]
    if hidden:
        lines.append(
            f"{hidden} figure(s) unchanged or within noise, not listed (--verbose lists all)"
        )
    rule = (
        f"rules: deterministic figures exact (accuracy within {tol.acc_tol:g} absolute, other "
        f"losses within {tol.rel_tol:g} relative); timings outside base spread x/÷ "
        f"{tol.factor:g} (p90 printed, not gated; busy or shared cells not gated); memory "
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


def _worth_showing(finding: Finding) -> bool:
    """Changed, regressed, or new and gated: not an ungated figure (e.g. the load average)."""
    if finding.figure.startswith("status "):  # a cell that changed status, or a new cell
        return True
    return finding.verdict not in UNCHANGED and kind(finding.figure) != INFO


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
