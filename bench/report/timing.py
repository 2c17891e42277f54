"""Timings as a reviewer reads them: the median of the stored raw samples with a 95 % interval
for the median, and a mark on every timing from a cell that ran on a busy machine.

The interval is the distribution-free order-statistic (binomial) interval: with n samples sorted
x(1) <= ... <= x(n), the number of samples below the true median is Binomial(n, 1/2), so
[x(l), x(n + 1 - l)] covers the median with probability 1 - 2 P(B <= l - 1); l is the largest
rank that keeps this at least 95 % (fewer than 6 samples admit no such interval). The seeds of a
(model, task) are pooled: one machine's samples of one workload, whose spread is the machine's.
A rate (1 / seconds, `Metric.inverse_samples`) inverts the interval's ends. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from bench.records import Record
from bench.report.display import Scale, number
from bench.report.table import Cell
from suites.metric import Metric

CONFIDENCE = 0.95
BUSY_MARK = "¶"
BUSY_NOTE = (
    "¶ timing from a cell that ran on a busy machine (load above the core count, the record's "
    "machine_busy): noise, not a measurement."
)
INTERVAL_NOTE = (
    "Timings: median of the stored samples (seeds pooled) [95 % interval for the median, "
    "order-statistic (binomial) method]."
)
ACROSS_RUNS_NOTE = (
    "Timings here come from {} runs ({}): compare timings as ratios within one run "
    "(ratios are computed within each run), never absolute times across runs."
)


@dataclass(frozen=True)
class MedianInterval:
    """Median of the samples and its 95 % interval (None when too few samples for one)."""

    median: float
    low: float | None
    high: float | None
    n: int


def median_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (l, n + 1 - l) of the order-statistic interval for the median of n samples
    with coverage at least `confidence`; None when even (1, n) covers less."""
    alpha = 1.0 - confidence
    best = None
    for low in range(1, n // 2 + 1):
        if 2.0 * binom.cdf(low - 1, n, 0.5) <= alpha:
            best = low
        else:
            break
    return None if best is None else (best, n + 1 - best)


def median_interval(samples: Sequence[float], inverse: bool = False) -> MedianInterval:
    """The median of `samples` and its 95 % order-statistic interval; with `inverse`, of
    1 / each sample (a rate from seconds), the ends swapped so that low <= high."""
    values = np.sort(np.asarray(samples, dtype=float))
    if values.size == 0:
        raise ValueError("no samples to take a median of")
    median = float(np.median(values))
    ranks = median_ranks(values.size)
    low, high = (None, None) if ranks is None else (values[ranks[0] - 1], values[ranks[1] - 1])
    if inverse:
        median = 1.0 / median
        low, high = (None, None) if ranks is None else (1.0 / high, 1.0 / low)
    return MedianInterval(median, low, high, int(values.size))


def pooled_interval(records: Sequence[Record], metric: Metric) -> MedianInterval | None:
    """The figure's median interval over the stored samples of `records` pooled; None when the
    figure keeps no samples or the records hold none."""
    if not metric.samples:
        return None
    pooled = [
        float(s)
        for r in records
        if isinstance(r.metrics.get(metric.samples), list)
        for s in r.metrics[metric.samples]
    ]
    if not pooled or min(pooled) <= 0:
        return None
    return median_interval(pooled, inverse=metric.inverse_samples)


def busy(records: Sequence[Record]) -> bool:
    """Whether any of the cells ran on a busy machine (its timings are noise)."""
    return any("machine_busy" in r.metrics for r in records)


def timed_cell(cell: Cell, records: Sequence[Record], metric: Metric, shown: Scale,
               notes: set[str]) -> Cell:  # fmt: skip
    """A table cell of a timing: its stored samples' median [95 % interval] in the column's
    scale, and the busy mark when a cell of `records` ran on a busy machine; any other figure,
    or a cell with no value, unchanged."""
    if metric.kind != "timing" or cell.value is None:
        return cell
    text = cell.text
    interval = pooled_interval(records, metric)
    if interval is not None:
        notes.add(INTERVAL_NOTE)
        text = number(metric, interval.median, shown)
        if interval.low is not None:
            text += (
                f" [{number(metric, interval.low, shown)}, {number(metric, interval.high, shown)}]"
            )
        else:
            text += f" (n={interval.n}: too few samples for an interval)"
    if busy(records):
        notes.add(BUSY_NOTE)
        text += BUSY_MARK
    return Cell(text, value=cell.value, rank=cell.rank)
