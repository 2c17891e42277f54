"""The report's statistics: intervals of accuracies and paired comparisons of two models on one
test split, from per-example correctness (`bench.predictions`) and seeds. Pure functions on numpy
arrays; scipy.stats where it has the method (exact binomial test, normal quantiles).

Two sources of noise enter every accuracy: the training seed, and the finite test split (a sample
of the task's examples). The bootstraps here are two-level: each replicate resamples the seeds
with replacement, then resamples the test examples with replacement ONCE and evaluates every
resampled seed on that same resampled split (all seeds saw the same test split, so its sampling
error is shared by them, not averaged away across seeds). Intervals are percentile intervals of the
replicates. Without per-example predictions (older records) `seed_binomial_bootstrap_means` stands
in: seeds resampled, plus one shared binomial draw of the test split's error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as scipy_stats

from models.errors import InputError

LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8
N_RESAMPLES = 2000
_CHUNK_VALUES = 2_000_000  # resampled example indices drawn at a time (memory bound)
PAIRED_BOOTSTRAP, EXACT_MCNEMAR = "paired bootstrap", "exact McNemar"
PAIRED_BY_SEED, INDEPENDENT_SEEDS = "seeds paired by value", "seeds resampled independently"


def _matrix(correct_by_seed: Sequence[np.ndarray]) -> np.ndarray:
    """(S, N) bool matrix of correctness; every seed must cover the same N examples."""
    if not correct_by_seed:
        raise ValueError("no seeds to resample")
    sizes = {np.asarray(c).shape for c in correct_by_seed}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1 or next(iter(sizes))[0] == 0:
        raise ValueError(f"every seed needs the same non-empty (N,) correctness, got {sizes}")
    return np.stack([np.asarray(c).astype(bool) for c in correct_by_seed])  # (S, N)


def _example_resamples(n: int, n_resamples: int, rng: np.random.Generator):
    """Chunks of resampled example indices, (chunk, n) each, n_resamples rows in all."""
    chunk = max(1, _CHUNK_VALUES // n)
    for start in range(0, n_resamples, chunk):
        yield rng.integers(0, n, size=(min(chunk, n_resamples - start), n))


def hierarchical_bootstrap_means(
    correct_by_seed: Sequence[np.ndarray], *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_resamples,) replicate mean accuracies: in each replicate, the seeds are resampled with
    replacement, then the test examples once (shared by all resampled seeds, who saw the same
    split); the replicate is the mean over the resampled seeds of their accuracy on the resampled
    examples. `correct_by_seed`: one (N,) 0/1 array per seed, on the same split."""
    correct = _matrix(correct_by_seed)  # (S, N)
    n_seeds, n = correct.shape
    out = np.empty(n_resamples)
    done = 0
    for idx in _example_resamples(n, n_resamples, rng):  # (R, N)
        seeds = rng.integers(0, n_seeds, size=(len(idx), n_seeds))  # (R, S)
        per_seed = correct[seeds[:, :, None], idx[:, None, :]].mean(axis=2)  # (R, S)
        out[done : done + len(idx)] = per_seed.mean(axis=1)
        done += len(idx)
    return out


def seed_binomial_bootstrap_means(
    accuracies: Sequence[float], n_test: int, *, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """The fallback without per-example predictions: (n_resamples,) replicates of the mean of the
    resampled seed accuracies plus one shared draw of the test split's sampling error,
    Binomial(n_test, p) / n_test - p with p the mean accuracy."""
    acc = np.asarray(accuracies, dtype=np.float64)  # (S,)
    if acc.size == 0 or n_test < 1:
        raise ValueError("need at least one seed and a test split size")
    p = float(acc.mean())
    seeds = rng.integers(0, acc.size, size=(n_resamples, acc.size))  # (R, S)
    split_error = rng.binomial(n_test, p, size=n_resamples) / n_test - p  # (R,)
    return acc[seeds].mean(axis=1) + split_error


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile bootstrap interval at `level` (e.g. the 2.5th and 97.5th percentiles)."""
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedComparison:
    """A - B in accuracy (fractions, not points) on one split.

    p_value: two-sided; from the paired bootstrap, or exact McNemar when both have one seed.
    prob_improvement: P(A > B), rliable's probability of improvement (Agarwal et al. 2021): over
    every (seed of A, seed of B) pair, the fraction where A's accuracy is higher, a tie counting
    one half; with one seed each, the same on the example level (the fraction of discordant
    examples that A gets right, ties 1/2 when none is discordant)."""

    difference: float
    low: float
    high: float
    p_value: float
    prob_improvement: float
    n_seeds_a: int
    n_seeds_b: int
    n_examples: int
    test: str  # PAIRED_BOOTSTRAP or EXACT_MCNEMAR
    pairing: str  # PAIRED_BY_SEED or INDEPENDENT_SEEDS
    replicates: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.empty(0))


def require_same_split(split_a: str, split_b: str, what: str) -> None:
    """Refuse to pair two sets of predictions made on different test splits."""
    if split_a != split_b:
        raise InputError(
            f"{what}: the test splits differ (sha256 {split_a[:12]} vs {split_b[:12]}); pair only "
            "cells run on the same data (same data.seed, data.n_test and source)"
        )


def paired_difference(
    correct_a: Sequence[np.ndarray],
    correct_b: Sequence[np.ndarray],
    *,
    seeds_a: Sequence[int],
    seeds_b: Sequence[int],
    n_resamples: int = N_RESAMPLES,
    rng: np.random.Generator,
) -> PairedComparison:
    """A - B from per-seed (N,) correctness on the same split (check `require_same_split` first).

    Each replicate resamples the examples once (both models, every seed: the pairing on the
    example level) and the seeds: when A and B ran the same seed values, one resampled list of
    seeds serves both (paired by seed value: a seed fixes the data order and initialisation);
    otherwise each side's seeds are resampled independently. The interval is the percentile
    interval of the replicate differences; the bootstrap p-value is the smallest two-sided level
    at which that interval excludes 0: 2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (R + 1), capped at
    1. With one seed on each side the p-value is the exact McNemar test instead."""
    a, b = _matrix(correct_a), _matrix(correct_b)  # (Sa, N), (Sb, N)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"A has {a.shape[1]} test examples, B {b.shape[1]}: not one split")
    if len(seeds_a) != len(a) or len(seeds_b) != len(b):
        raise ValueError("one seed value per correctness array")
    paired = sorted(seeds_a) == sorted(seeds_b)
    if paired:  # the same seed order on both sides
        b = b[[list(seeds_b).index(s) for s in seeds_a]]
    n = a.shape[1]
    diffs = np.empty(n_resamples)
    done = 0
    for idx in _example_resamples(n, n_resamples, rng):  # (R, N)
        r = len(idx)
        pick_a = rng.integers(0, len(a), size=(r, len(a)))  # (R, Sa)
        pick_b = pick_a if paired else rng.integers(0, len(b), size=(r, len(b)))  # (R, Sb)
        mean_a = a[pick_a[:, :, None], idx[:, None, :]].mean(axis=(1, 2))  # (R,)
        mean_b = b[pick_b[:, :, None], idx[:, None, :]].mean(axis=(1, 2))  # (R,)
        diffs[done : done + r] = mean_a - mean_b
        done += r
    low, high = percentile_interval(diffs)
    acc_a, acc_b = a.mean(axis=1), b.mean(axis=1)  # (Sa,), (Sb,)
    if len(a) == len(b) == 1:
        test = EXACT_MCNEMAR
        p_value = mcnemar_exact(a[0], b[0])
        only_a, only_b = float(np.sum(a[0] & ~b[0])), float(np.sum(~a[0] & b[0]))
        prob = 0.5 if only_a + only_b == 0 else only_a / (only_a + only_b)
    else:
        test = PAIRED_BOOTSTRAP
        p_value = bootstrap_p_value(diffs)
        prob = probability_of_improvement(acc_a, acc_b)
    return PairedComparison(
        difference=float(acc_a.mean() - acc_b.mean()),
        low=low,
        high=high,
        p_value=p_value,
        prob_improvement=prob,
        n_seeds_a=len(a),
        n_seeds_b=len(b),
        n_examples=n,
        test=test,
        pairing=PAIRED_BY_SEED if paired else INDEPENDENT_SEEDS,
        replicates=diffs,
    )


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided p-value of "no difference" from bootstrap replicates of a difference: the
    smallest level at which the percentile interval excludes 0,
    2 min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (R + 1), capped at 1."""
    below = int(np.sum(differences <= 0.0)) + 1
    above = int(np.sum(differences >= 0.0)) + 1
    return min(1.0, 2.0 * min(below, above) / (len(differences) + 1))


def probability_of_improvement(scores_a: np.ndarray, scores_b: np.ndarray) -> float:
    """P(A > B) over all (a, b) score pairs, ties counting 1/2 (rliable's estimator)."""
    a, b = np.asarray(scores_a)[:, None], np.asarray(scores_b)[None, :]  # (Sa, 1), (1, Sb)
    return float(np.mean((a > b) + 0.5 * (a == b)))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs (A right and B
    wrong: k of n discordant) against p = 1/2 (scipy.stats.binomtest); 1 when none discords."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(scipy_stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the given order: the i-th
    smallest p times (m - i + 1), made monotone by a running maximum, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)  # (m,)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))  # (m,)
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def minimum_detectable_effect(
    n_test: int,
    n_seeds: int,
    *,
    accuracy: float,
    seed_std: float = 0.0,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """The smallest difference in accuracy (a fraction) between two models, each run with
    `n_seeds` seeds on `n_test` test examples, that a two-sided test at `alpha` detects with
    probability `power`, by the normal approximation for two independent means:

        MDE = (z_{1 - alpha/2} + z_{power}) * sqrt(2 * (seed_std^2 / n_seeds + p (1 - p) / n_test))

    with p = `accuracy` and `seed_std` the between-seed standard deviation of one model's
    accuracy (0 when unknown, e.g. one seed: then only the test split's binomial error counts).
    A paired test can detect less than this (the models share the examples' difficulty), so it
    is an upper bound of what the run could see; at 5 % and 80 % the factor is 2.80.
    p is kept within [1/n_test, 1 - 1/n_test]: at an accuracy of exactly 0 or 1 the binomial
    variance vanishes and the formula would claim that any difference, however small, is
    visible, while a test on n_test examples needs some examples to differ."""
    if n_test < 1 or n_seeds < 1:
        raise ValueError("need a test split and at least one seed")
    z = scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power)
    p = min(max(accuracy, 1.0 / n_test), 1.0 - 1.0 / n_test)
    variance = seed_std**2 / n_seeds + p * (1.0 - p) / n_test
    return float(z * np.sqrt(2.0 * variance))
