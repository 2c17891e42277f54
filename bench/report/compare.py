"""The gates of `bench compare BASE NEW`: match the cells of two runs and give each figure of
each cell a verdict (`Finding`). `bench.report.comparison` selects the cells, adds the timing
ratios (`bench.report.compare_ratios`) and the cause (`bench.report.compare_cause`); the
renderers print it.

How each figure is gated comes from the metric catalog (`bench.metric_catalog`: its kind and
direction), never from its name:
- deterministic (parameters, FLOPs, the best step): must be equal. Any change fails, in either
  direction (`CHANGED`): the code now computes something else, and the reference must be
  refreshed on purpose (results/README.md).
- seeded (accuracy, loss): a fraction within `acc_tol` (absolute), anything else within
  `rel_tol` (relative). A move the figure's direction calls worse fails (`WORSE`); a better one
  is an improvement (`better`); a figure with no direction fails either way (`CHANGED`).
- timing: noise unless NEW falls outside BASE's spread widened by `factor`: [min(samples) /
  factor, max(samples) * factor] of the figure's stored samples (for a rate, 1 / the sampled
  seconds), else [base / factor, base * factor]. Only the worse side (by the figure's direction)
  fails. A timing the catalog marks not gated (a p90 tail) is printed (`slower tail`), never
  failed: one stall of a shared CI machine moves a p90 of a few dozen samples by 5x while the
  median holds.
- memory: fails when NEW > BASE * factor.
- environment, and a figure the catalog lacks: printed, not gated.
Timing figures of a cell that shared its device with other cells in either run
(`placement.device_shared`, `bench run --share-device`) that moved beyond the band are `shared`,
and those of a cell that ran on a busy machine in either run (`machine_busy`: load above the
core count) are `busy`; neither is gated here: the ratios to a reference model measured in the
same run gate them (`bench.report.compare_ratios`), busy or not.
Cells are matched by their whole identity, sweep variant included. A cell `ok` in BASE that is
not `ok` in NEW is a regression; so is one absent from NEW when every BASE cell is required
(`require_all`); so is a gated figure that BASE has and NEW lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.metric_catalog import HARNESS, MetricCatalog, sampled_range
from bench.records import BUSY_KEY, CellId, Record
from bench.report.frame import scalar_metrics
from models.errors import InputError
from suites.metric import Metric

# How a figure is gated (`gate`), from its catalog entry.
EXACT, TOLERANCE, BAND, TAIL, MEMORY, INFO = "exact", "tolerance", "band", "tail", "memory", "info"
TIMINGS = (BAND, TAIL)
REGRESSIONS = ("CHANGED", "WORSE", "SLOWER", "LARGER", "MISSING")
IMPROVEMENTS = ("better", "faster", "smaller")
NOT_GATED = ("busy", "shared", "slower tail")  # moved beyond the band, printed as a count
UNCHANGED = ("same", "~", "info")  # left out of the printed table unless verbose


@dataclass(frozen=True)
class Tolerances:
    """factor: timing and memory slack (asv's --factor); acc_tol: absolute tolerance of a seeded
    fraction (0.01 = one percentage point); rel_tol: relative tolerance of other seeded figures;
    ratio_factor: slack of a timing's ratio to the reference model of its own run (NEW ratio /
    BASE ratio), tighter than `factor` since the machine's speed and load cancel in it."""

    factor: float = 1.1
    acc_tol: float = 0.0
    rel_tol: float = 0.0
    ratio_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.factor < 1.0 or self.ratio_factor < 1.0 or self.acc_tol < 0 or self.rel_tol < 0:
            raise InputError("--factor and --ratio-factor must be >= 1 and the tolerances >= 0")


@dataclass(frozen=True)
class Finding:
    cell: str
    figure: str
    base: float | None
    new: float | None
    # same | ~ | better | faster | smaller | slower tail | shared | busy | CHANGED | WORSE |
    # SLOWER | LARGER | MISSING | new | info
    verdict: str
    # a model: base and new are the figure divided by that model's in the same run and cell
    relative_to: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict in REGRESSIONS

    @property
    def improvement(self) -> bool:
        return self.verdict in IMPROVEMENTS

    @property
    def is_status(self) -> bool:
        """A cell that changed status (or is in one run only), not a figure."""
        return self.figure.startswith("status ")

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
    require_all: bool = False,
) -> list[Finding]:
    """Findings for every cell both runs have (in BASE's order); with `require_all`, a cell ok in
    BASE and absent from NEW is MISSING too (otherwise the caller counts it as not compared)."""
    new_by_cell: dict[CellId, Record] = {r.cell: r for r in new}
    findings: list[Finding] = []
    for b in base:
        cell = str(b.cell)
        n = new_by_cell.get(b.cell)
        if n is None and not require_all:
            continue
        if b.status != "ok":
            if n is not None and n.status == "ok":
                findings.append(Finding(cell, f"status {b.status} -> ok", None, None, "new"))
            continue
        if n is None or n.status != "ok":
            what = "absent" if n is None else f"{n.status}: {n.reason}"
            findings.append(Finding(cell, f"status ok -> {what}", None, None, "MISSING"))
            continue
        findings += _compare_figures(cell, b, n, tol, catalog)
    return findings


def _compare_figures(
    cell: str, b: Record, n: Record, tol: Tolerances, catalog: MetricCatalog
) -> list[Finding]:
    base_values, new_values = scalar_metrics(b), scalar_metrics(n)
    untimed = why_timings_are_noise(b) or why_timings_are_noise(n)
    findings = []
    for figure, old in base_values.items():
        metric = catalog.find(figure)
        if figure not in new_values:
            retired = metric is not None and metric.replaced_by in new_values
            verdict = "info" if gate(metric) == INFO or retired else "MISSING"
            findings.append(Finding(cell, figure, old, None, verdict))
            continue
        verdict = _verdict(metric, old, new_values[figure], b.metrics, tol)
        excuse = untimed or (
            "shared" if figure in TIMED_WHILE_TRAINING and trained_beside_others(b, n) else ""
        )
        if excuse and gate(metric) in TIMINGS and verdict != "~":
            verdict = excuse  # moved beyond the band, but not on a machine that can tell
        findings.append(Finding(cell, figure, old, new_values[figure], verdict))
    for figure in new_values.keys() - base_values.keys():
        findings.append(Finding(cell, figure, None, new_values[figure], "new"))
    return findings


# Wall-clock figures of the training itself: under the parallel schedule (`bench run --workers`)
# another cell trained beside it, so they are no quiet timing (the latencies are: taken alone).
TIMED_WHILE_TRAINING = ("train_time_s", "examples_per_s")


def trained_beside_others(*records: Record) -> bool:
    """Whether any of `records` trained on parallel workers (`placement.schedule.train`)."""
    return any((r.placement.get("schedule") or {}).get("train") == "parallel" for r in records)


def why_timings_are_noise(record: Record) -> str:
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
            within = abs(new - old) <= tol.acc_tol
        else:
            within = math.isclose(new, old, rel_tol=tol.rel_tol, abs_tol=0.0)
        if within:
            return "same"
        if metric.direction == "neither":
            return "CHANGED"
        better = new > old if metric.direction == "higher" else new < old
        return "better" if better else "WORSE"
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
