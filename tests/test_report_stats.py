"""The report statistics against independent implementations: statsmodels' exact McNemar and Holm,
a published McNemar worked example, statsmodels' power solver for the minimum detectable effect,
and the bootstrap intervals' coverage simulated on known Bernoulli models."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from bench.report.stats import (
    EXACT_MCNEMAR,
    INDEPENDENT_SEEDS,
    PAIRED_BOOTSTRAP,
    PAIRED_BY_SEED,
    hierarchical_bootstrap_means,
    holm,
    mcnemar_exact,
    minimum_detectable_effect,
    paired_difference,
    percentile_interval,
    probability_of_improvement,
    require_same_split,
    seed_binomial_bootstrap_means,
)
from models.errors import InputError


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Correctness vectors of A and B with the given 2x2 table of (A right?, B right?)."""
    a = np.array([1] * both + [1] * only_a + [0] * only_b + [0] * neither, dtype=bool)
    b = np.array([1] * both + [0] * only_a + [1] * only_b + [0] * neither, dtype=bool)
    return a, b


def test_mcnemar_published_worked_example() -> None:
    """Fagerland, Lydersen & Laake (2013), BMC Med. Res. Methodol. 13:91, Table 1 (Bentur et al.
    airway hyper-responsiveness, 21 children before/after): discordant 1 and 7; their exact
    conditional McNemar p-value is 0.070 (= 2 * 9 / 256)."""
    a, b = _pairs(1, 1, 7, 12)
    assert mcnemar_exact(a, b) == pytest.approx(0.0703, abs=1e-4)


@pytest.mark.parametrize("table", [(50, 3, 12, 35), (400, 40, 41, 19), (10, 0, 6, 4), (5, 9, 9, 0)])
def test_mcnemar_matches_statsmodels(table: tuple[int, int, int, int]) -> None:
    both, only_a, only_b, neither = table
    a, b = _pairs(*table)
    reference = mcnemar([[both, only_a], [only_b, neither]], exact=True).pvalue
    assert mcnemar_exact(a, b) == pytest.approx(reference, rel=1e-12)


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    a, b = _pairs(7, 0, 0, 3)
    assert mcnemar_exact(a, b) == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed: int) -> None:
    p = np.random.default_rng(seed).uniform(0, 0.2, size=7)
    p[2] = p[5]  # a tie
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=1e-12)


def test_holm_by_hand() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])


def test_minimum_detectable_effect_matches_statsmodels_power() -> None:
    """One seed, no seed variance: the two-proportion normal formula; statsmodels solves the
    standardized effect for n per group, alpha 5 %, power 80 % (its second tail adds ~1e-9)."""
    p, n = 0.37, 500
    effect = NormalIndPower().solve_power(nobs1=n, alpha=0.05, power=0.8, ratio=1.0)
    expected = effect * np.sqrt(p * (1 - p))
    assert minimum_detectable_effect(n, 1, accuracy=p) == pytest.approx(expected, rel=1e-6)
    # seed variance adds to the binomial one: sigma^2 / seeds, so more seeds see less
    with_seeds = minimum_detectable_effect(n, 3, accuracy=p, seed_std=0.02)
    by_hand = 2.8016 * np.sqrt(2 * (0.02**2 / 3 + p * (1 - p) / n))
    assert with_seeds == pytest.approx(by_hand, rel=1e-4)
    assert minimum_detectable_effect(n, 10, accuracy=p, seed_std=0.02) < with_seeds


def _difficult_examples(rng: np.random.Generator, n: int, seeds: int, shift_std: float):
    """A known model: example i is answered right with probability q_i ~ Beta(0.7, 0.3) (mean
    0.7), shifted per seed by N(0, shift_std); the population accuracy is 0.7."""
    q = rng.beta(0.7, 0.3, n)
    return [rng.random(n) < np.clip(q + rng.normal(0, shift_std), 0, 1) for _ in range(seeds)]


@pytest.mark.parametrize(("seeds", "shift_std"), [(1, 0.0), (3, 0.03)])
def test_hierarchical_bootstrap_interval_covers_the_truth(seeds: int, shift_std: float) -> None:
    rng = np.random.default_rng(1)
    sims, hits = 200, 0
    for _ in range(sims):
        correct = _difficult_examples(rng, 300, seeds, shift_std)
        replicates = hierarchical_bootstrap_means(correct, n_resamples=400, rng=rng)
        assert replicates.shape == (400,)
        low, high = percentile_interval(replicates)
        hits += low <= 0.7 <= high
    assert 0.91 <= hits / sims <= 0.995  # nominal 95 %, at most slightly conservative


def test_seed_binomial_fallback_covers_the_truth() -> None:
    rng = np.random.default_rng(2)
    sims, hits = 200, 0
    for _ in range(sims):
        correct = _difficult_examples(rng, 300, 3, 0.03)
        accuracies = [c.mean() for c in correct]
        replicates = seed_binomial_bootstrap_means(accuracies, 300, n_resamples=400, rng=rng)
        low, high = percentile_interval(replicates)
        hits += low <= 0.7 <= high
    assert 0.91 <= hits / sims <= 1.0


def test_hierarchical_bootstrap_of_one_seed_is_the_example_bootstrap() -> None:
    """With one seed, the replicates are plain example resamples: sd = sqrt(p (1 - p) / n)."""
    correct = np.array([1] * 300 + [0] * 200, dtype=bool)
    rng = np.random.default_rng(3)
    replicates = hierarchical_bootstrap_means([correct], n_resamples=4000, rng=rng)
    assert replicates.mean() == pytest.approx(0.6, abs=0.002)
    assert replicates.std() == pytest.approx(np.sqrt(0.6 * 0.4 / 500), rel=0.05)


def test_paired_difference_one_seed_is_exact_mcnemar() -> None:
    a, b = _pairs(200, 30, 12, 258)
    result = paired_difference([a], [b], seeds_a=[0], seeds_b=[0], rng=np.random.default_rng(0))
    assert result.test == EXACT_MCNEMAR
    assert result.p_value == pytest.approx(mcnemar([[200, 30], [12, 258]], exact=True).pvalue)
    assert result.difference == pytest.approx(18 / 500)
    assert result.low < result.difference < result.high
    assert result.prob_improvement == pytest.approx(30 / 42)


def test_paired_bootstrap_separates_a_clear_gap_and_not_a_small_one() -> None:
    rng = np.random.default_rng(4)
    n, q = 500, rng.beta(0.7, 0.3, 500)
    base = [rng.random(n) < q for _ in range(3)]
    # B gets 50 extra examples right (10 points) in every seed: a clear gap
    better = [c.copy() for c in base]
    for c in better:
        c[np.flatnonzero(~c)[:50]] = True
    clear = paired_difference(better, base, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2], rng=rng)
    assert clear.test == PAIRED_BOOTSTRAP and clear.pairing == PAIRED_BY_SEED
    assert clear.difference == pytest.approx(0.10)
    assert clear.p_value < 0.01 and clear.low > 0.05
    assert clear.prob_improvement == 1.0
    # one extra example right in one seed: 0.2 / 3 points, not separable
    tiny = [c.copy() for c in base]
    tiny[0][np.flatnonzero(~tiny[0])[0]] = True
    small = paired_difference(tiny, base, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2], rng=rng)
    assert small.p_value > 0.05 and small.low <= 0.0 <= small.high


def test_paired_difference_pairs_seeds_by_value() -> None:
    """B's seeds listed in another order are matched to A's by value; other seeds are not."""
    rng = np.random.default_rng(5)
    seeds = [rng.random(200) < 0.6 for _ in range(3)]
    same = paired_difference(seeds, seeds[::-1], seeds_a=[0, 1, 2], seeds_b=[2, 1, 0], rng=rng)
    assert same.pairing == PAIRED_BY_SEED
    assert same.difference == 0.0 and same.low == same.high == 0.0  # identical per seed
    other = paired_difference(seeds, seeds, seeds_a=[0, 1, 2], seeds_b=[3, 4, 5], rng=rng)
    assert other.pairing == INDEPENDENT_SEEDS and other.low < 0.0 < other.high


def test_paired_bootstrap_null_rejection_rate_is_at_most_nominal() -> None:
    rng = np.random.default_rng(6)
    rejected = 0
    for _ in range(100):
        q = rng.beta(0.7, 0.3, 300)
        a = [rng.random(300) < q for _ in range(3)]
        b = [rng.random(300) < q for _ in range(3)]
        result = paired_difference(
            a, b, seeds_a=[0, 1, 2], seeds_b=[0, 1, 2], n_resamples=400, rng=rng
        )
        rejected += result.p_value < 0.05
    assert rejected / 100 <= 0.08


def test_probability_of_improvement_is_rliables() -> None:
    # pairs: (3 > 1, 3 > 2), (2 > 1, 2 = 2) -> (1 + 1 + 1 + 0.5) / 4
    assert probability_of_improvement(np.array([3, 2]), np.array([1, 2])) == 0.875


def test_different_splits_are_refused() -> None:
    require_same_split("ab" * 32, "ab" * 32, "x")
    with pytest.raises(InputError, match="test splits differ"):
        require_same_split("ab" * 32, "cd" * 32, "switch vs full_attention on listops")


def test_minimum_detectable_effect_at_a_perfect_score_is_not_zero() -> None:
    """All 256 test examples right: the normal approximation alone would claim that a 0.0-point
    difference is detectable; with p kept at 1 - 1/n it is the MDE of 255 of 256 right."""
    at_one = minimum_detectable_effect(256, 1, accuracy=1.0)
    assert at_one == pytest.approx(minimum_detectable_effect(256, 1, accuracy=255 / 256))
    assert 0.01 < at_one < 0.03
    assert minimum_detectable_effect(256, 1, accuracy=0.0) == pytest.approx(at_one)
