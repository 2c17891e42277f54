"""Records -> the statistics of accuracy cells: each (model, task)'s mean with its 95 % interval,
whether two cells are separable, paired comparisons of two models (per task and on average over
tasks) and the run's minimum detectable effect. The methods are `bench.report.stats`'; this module
picks them by what the records hold: per-example predictions on one split give the two-level
bootstrap and paired tests; records without them (older runs) fall back to seeds + binomial and
the tables say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.predictions import TestPredictions, decode
from bench.records import Record
from bench.report import stats

BOOTSTRAP, SEEDS_BINOMIAL, SEEDS_ONLY = "bootstrap", "seeds+binomial", "seeds"
RNG_SEED = 0  # every table draws the same resamples: a report is reproducible
METHOD_NOTE = (
    "Cells: mean over seeds [95 % interval]; the interval is a percentile bootstrap, two-level "
    f"(seeds resampled, then the test examples), {stats.N_RESAMPLES} resamples."
)
FALLBACK_NOTE = (
    "Some cells' records hold no per-example test predictions (written before they were kept): "
    "their intervals resample the seeds and add the test split's binomial error, and their "
    "comparisons are unpaired (less sensitive): {}."
)
SEEDS_ONLY_NOTE = (
    "Some cells' records hold neither predictions nor the test split size: their intervals "
    "resample the seeds only (the test split's sampling error is left out): {}."
)


@dataclass(frozen=True)
class CellStats:
    """One (model, task)'s accuracy over its ok seeds (fractions)."""

    mean: float
    low: float
    high: float
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]  # per seed, in seed order
    method: str  # BOOTSTRAP, SEEDS_BINOMIAL or SEEDS_ONLY
    n_test: int | None
    replicates: np.ndarray = field(repr=False, compare=False)
    predictions: tuple[TestPredictions, ...] | None = field(repr=False, compare=False)


def tasks_replicates(seeds_by_task: Iterable[Sequence[Record]]) -> np.ndarray:
    """(R,) bootstrap replicates of one model's mean accuracy over tasks: the mean of each task's
    `cell_stats` replicates (`seeds_by_task`: one task's records per item; each needs an ok
    seed). One task's are exactly the accuracy table's."""
    found = [cell_stats(seeds) for seeds in seeds_by_task]
    if not found or any(c is None for c in found):
        raise ValueError("a mean over tasks needs at least one ok seed in every task")
    return np.mean([c.replicates for c in found], axis=0)


def tasks_interval(records: Sequence[Record], tasks: Sequence[str]) -> tuple[float, float]:
    """The 95 % interval of one model's mean accuracy over those of `tasks` it has (fractions),
    `records` its cells' seeds: one task's is the accuracy table's (`cell_stats`)."""
    by_task = [[r for r in records if r.task == task] for task in tasks]
    with_ok = [s for s in by_task if any(r.status == "ok" and "accuracy" in r.metrics for r in s)]
    return stats.percentile_interval(tasks_replicates(with_ok))


def _rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def cell_stats(records: Sequence[Record]) -> CellStats | None:
    """The statistics of the ok seeds among `records` (one cell's seeds), None when none."""
    ok = sorted(
        (r for r in records if r.status == "ok" and "accuracy" in r.metrics), key=lambda r: r.seed
    )
    if not ok:
        return None
    seeds = tuple(r.seed for r in ok)
    accuracies = [float(r.metrics["accuracy"]) for r in ok]
    predictions = _predictions(ok)
    sizes = {r.data.get("n_test") for r in ok}
    n_test = next(iter(sizes)) if len(sizes) == 1 and isinstance(next(iter(sizes)), int) else None
    if predictions is not None:
        method, n_test = BOOTSTRAP, predictions[0].n
        replicates = stats.hierarchical_bootstrap_means(
            [p.correct for p in predictions], n_resamples=stats.N_RESAMPLES, rng=_rng()
        )
    elif n_test:
        method = SEEDS_BINOMIAL
        replicates = stats.seed_binomial_bootstrap_means(
            accuracies, n_test, n_resamples=stats.N_RESAMPLES, rng=_rng()
        )
    else:
        method = SEEDS_ONLY
        pick = _rng().integers(0, len(ok), size=(stats.N_RESAMPLES, len(ok)))
        replicates = np.asarray(accuracies)[pick].mean(axis=1)
    low, high = stats.percentile_interval(replicates)
    return CellStats(
        float(np.mean(accuracies)),
        low,
        high,
        seeds,
        tuple(accuracies),
        method,
        n_test,
        replicates,
        predictions,
    )


def _predictions(ok: Sequence[Record]) -> tuple[TestPredictions, ...] | None:
    """Every seed's predictions when all have them on one split, else None."""
    if not all(r.test_predictions for r in ok):
        return None
    decoded = tuple(decode(r.test_predictions) for r in ok)
    if len({p.split_sha256 for p in decoded}) != 1:
        return None  # seeds on different splits (different data.seed): not one test set
    return decoded


def can_pair(a: CellStats, b: CellStats) -> bool:
    return (
        a.predictions is not None
        and b.predictions is not None
        and a.predictions[0].split_sha256 == b.predictions[0].split_sha256
    )


def compare(a: CellStats, b: CellStats) -> stats.PairedComparison:
    """A - B on one task: paired (bootstrap, or exact McNemar at one seed each) when both hold
    predictions on the same split, else unpaired from the two cells' own replicates."""
    if can_pair(a, b):
        return stats.paired_difference(
            [p.correct for p in a.predictions],
            [p.correct for p in b.predictions],
            seeds_a=a.seeds,
            seeds_b=b.seeds,
            rng=_rng(),
        )
    diffs = a.replicates - b.replicates  # independent resamples of each side
    low, high = stats.percentile_interval(diffs)
    return stats.PairedComparison(
        difference=a.mean - b.mean,
        low=low,
        high=high,
        p_value=stats.bootstrap_p_value(diffs),
        prob_improvement=_seed_probability(a, b),
        n_seeds_a=len(a.seeds),
        n_seeds_b=len(b.seeds),
        n_examples=a.n_test or 0,
        test=f"unpaired bootstrap ({a.method if a.method != BOOTSTRAP else b.method})",
        pairing=stats.INDEPENDENT_SEEDS,
        replicates=diffs,
    )


def _seed_probability(a: CellStats, b: CellStats) -> float:
    """P(A > B) over (seed of A, seed of B) pairs of their accuracies."""
    return stats.probability_of_improvement(np.array(a.accuracies), np.array(b.accuracies))


def average_comparison(per_task: Sequence[stats.PairedComparison]) -> stats.PairedComparison:
    """A - B averaged over tasks (equal weight): the mean difference, the percentile interval and
    bootstrap p-value of the mean of the tasks' replicates (tasks resampled independently), and
    the mean of the tasks' probabilities of improvement (rliable's average over tasks)."""
    diffs = np.mean([c.replicates for c in per_task], axis=0)  # (R,)
    low, high = stats.percentile_interval(diffs)
    tests = sorted({c.test for c in per_task})
    return stats.PairedComparison(
        difference=float(np.mean([c.difference for c in per_task])),
        low=low,
        high=high,
        p_value=stats.bootstrap_p_value(diffs),
        prob_improvement=float(np.mean([c.prob_improvement for c in per_task])),
        n_seeds_a=min(c.n_seeds_a for c in per_task),
        n_seeds_b=min(c.n_seeds_b for c in per_task),
        n_examples=sum(c.n_examples for c in per_task),
        test=f"bootstrap over tasks ({', '.join(tests)})",
        pairing=per_task[0].pairing if len({c.pairing for c in per_task}) == 1 else "mixed",
        replicates=diffs,
    )


def minimum_detectable_points(cells: Sequence[CellStats]) -> float | None:
    """The run's minimum detectable effect on one task, in points: the test size and the
    smallest seed count of `cells`, their mean accuracy and pooled between-seed std
    (`stats.minimum_detectable_effect`); None without a known test size."""
    sized = [c for c in cells if c.n_test]
    if not sized:
        return None
    variances = [np.var(c.accuracies, ddof=1) for c in sized if len(c.accuracies) > 1]
    seed_std = float(np.sqrt(np.mean(variances))) if variances else 0.0
    mde = stats.minimum_detectable_effect(
        min(c.n_test for c in sized),
        min(len(c.seeds) for c in sized),
        accuracy=float(np.mean([c.mean for c in sized])),
        seed_std=seed_std,
    )
    return 100.0 * mde
