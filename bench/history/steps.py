"""Change-point detection: the commits where a figure stepped, per series (one machine, suite,
scale, config, task, model, seed, variant and figure), with ruptures' PELT.

Why ruptures (evaluated on planted series of 20 commits, 200 draws each; see the commit that
added this module): asv.step_detect found a 2x step at 10 % / 20 % noise in 62 % / 16 % of the
draws (its penalty is tuned for long series); Apache Otava's e-divisive means found 96 % / 88 %
with 2-4 % false alarms in pure noise, but pins numpy 2.2 and scipy < 1.17 and pulls in database
and chat clients; ruptures (numpy and scipy only), as set here, found 100 % / 85 % (61 % in
heavy-tailed t3 noise) with no false alarm, and an exact FLOP step every time. Its l1 cost (was
l2) keeps a single slow run from reading as a step: with a 3x outlier in the first run and in
one other, false alarms fell from 72 % (l2) to 10 %; on this machine's first run of a commit
range, a cold first cell (2.04 s where the others took 0.7 s) had made an l2 step.

How a series is read: one point per commit (the median of its runs there); positive figures in
log space (a step is a ratio), fractions as they are (a step is in points); scaled by the noise,
estimated robustly from the successive differences (1.4826 x MAD / sqrt 2), floored at 1e-6 so an
exact figure splits at any change of 1e-5 or more; PELT with an l1 cost (absolute deviations
from the segment's median; l2 for an exact figure, which may step at its last commit alone) and
a penalty of 3 ln(n) per change point. A change point is reported when its segments' medians
differ by at least the kind's `MIN_CHANGE`, classified by the figure's direction.

A timing of a run on a busy machine (load above the core count) is plotted but not used: it moves
with the load, not the code (a runner's load falling from 10 to 2 made every smoke timing 2-5x
faster between two unchanged commits). Its ratio to the run's reference model is used: both
were timed in one run, so the load cancels to first order. Figures the catalog does not
gate (p90 tails) have no steps: their noise is what they show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import ruptures

from suites.metric import Metric

SERIES_KEY = (
    *("machine_key", "suite", "scale", "config", "task", "model", "seed", "variant"),
    *("relative_to", "figure"),
)
# The smallest step reported, by kind: relative (a ratio) for positive figures, in points (an
# absolute difference of fractions) for fractions. An exact figure's every change is a step.
MIN_CHANGE = {"deterministic": 0.0, "seeded": 0.02, "timing": 0.2, "memory": 0.1}
MIN_CHANGE_POINTS = {"deterministic": 0.0, "seeded": 0.01, "timing": 0.0, "memory": 0.0}
PENALTY_PER_LOG_N = 3.0
NOISE_FLOOR = 1e-6
Verdict = Literal["regression", "improvement", "change"]


@dataclass(frozen=True)
class Step:
    """A detected step of one series: between `last_good` (the last commit at the old level) and
    `first_bad` (the first commit at the new one). `change`: after / before for a positive figure,
    after - before (a fraction) for a fraction; `verdict` by the figure's direction ("change"
    when it has none); `current` when this is the series' last step and the series reaches the
    machine's latest commit."""

    series: tuple
    last_good: str
    first_bad: str
    index: int
    before: float
    after: float
    change: float
    in_points: bool
    verdict: Verdict
    current: bool


def is_fraction(metric: Metric) -> bool:
    return metric.unit == "fraction"


def detect(values: Sequence[float], metric: Metric) -> list[int]:
    """Indices where a new level starts (each > 0), at least the kind's smallest change. A
    figure the catalog never gates (a p90 tail) is shown but has no steps."""
    if not metric.gated:
        return []
    y = np.asarray(values, dtype=float)
    exact = metric.kind == "deterministic"
    min_size = 1 if exact else 2
    if len(y) < 2 * min_size or not np.isfinite(y).all():
        return []
    log_space = not is_fraction(metric) and bool((y > 0).all())
    z = np.log(y) if log_space else y
    d = np.diff(z)
    sigma = max(1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2), NOISE_FLOOR)
    scaled = ((z - np.median(z)) / sigma).reshape(-1, 1)
    # l1 keeps one slow run from making a step, but needs two points a segment; an exact
    # figure has no outliers, and its step at the latest commit must show at once: l2
    cost = "l2" if exact else "l1"
    algo = ruptures.Pelt(model=cost, min_size=min_size, jump=1).fit(scaled)
    breaks = algo.predict(pen=PENALTY_PER_LOG_N * math.log(len(y)))[:-1]
    edges = [0, *breaks, len(y)]
    kept = []
    for i, at in enumerate(breaks):
        before, after = np.median(z[edges[i] : at]), np.median(z[at : edges[i + 2]])
        if log_space:
            big = abs(after - before) >= math.log1p(MIN_CHANGE.get(metric.kind, 0.0))
        else:
            big = abs(after - before) >= MIN_CHANGE_POINTS.get(metric.kind, 0.0)
        if big and after != before:
            kept.append(at)
    return kept


def verdict(metric: Metric, before: float, after: float) -> Verdict:
    if metric.direction == "neither" or after == before:
        return "change"
    worse = after > before if metric.direction == "lower" else after < before
    return "regression" if worse else "improvement"


def series_steps(
    key: tuple, commits: Sequence[str], values: Sequence[float], metric: Metric, latest: str
) -> list[Step]:
    """The steps of one series (`commits` oldest first, one value each)."""
    found = detect(values, metric)
    y = np.asarray(values, dtype=float)
    edges = [0, *found, len(y)]
    steps = []
    for i, at in enumerate(found):
        before = float(np.median(y[edges[i] : at]))
        after = float(np.median(y[at : edges[i + 2]]))
        points = is_fraction(metric)
        change = after - before if points else (after / before if before else math.inf)
        current = i == len(found) - 1 and commits[-1] == latest
        steps.append(
            Step(key, commits[at - 1], commits[at], at, before, after, change, points,
                 verdict(metric, before, after), current)
        )  # fmt: skip
    return steps


def commit_points(frame: pd.DataFrame, position: dict[str, int]) -> pd.DataFrame:
    """One row per (series, commit): the median value of its runs there, the widest sample band
    (low, high), the median quartiles, and whether any run was busy or dirty; in commit order."""
    grouped = frame.groupby([*SERIES_KEY, "git_sha"], sort=False, dropna=False)
    points = grouped.agg(
        value=("value", "median"), low=("low", "min"), q1=("q1", "median"),
        q3=("q3", "median"), high=("high", "max"), busy=("busy", "any"),
        dirty=("git_dirty", "any"), runs=("run_id", "nunique"),
    ).reset_index()  # fmt: skip
    points["position"] = points["git_sha"].map(position)
    return points.sort_values([*SERIES_KEY, "position"], kind="stable").reset_index(drop=True)
