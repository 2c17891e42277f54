"""Equal-budget views and the Pareto front: interpolation at common budgets against hand
values, the budgets every curve reaches, and the front's membership probability on planted
models (a clearly dominated model ~0, a clear front model ~1)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.records import Record
from bench.report.budget import accuracy_at, budget_curve, budget_tables, common_budgets
from bench.report.frame import Runs
from bench.report.pareto import non_dominated, pareto_front


def _cell(model: str, seed: int, dev: list[tuple[int, float]], examples: list[int],
          seconds: list[float], train_flops: float, **extra) -> Record:  # fmt: skip
    metrics = {
        "dev_curve": [list(p) for p in dev],
        "dev_curve_examples": examples,
        "dev_curve_train_s": seconds,
        "flops_train_per_example": train_flops,
        **extra,
    }
    return Record("r", "lra", "listops", model, "tiny", seed, "ok", metrics=metrics)


def test_accuracy_is_linear_between_evaluations_and_absent_outside() -> None:
    record = _cell("a", 0, [(10, 0.2), (20, 0.4), (30, 0.5)], [320, 640, 960], [1, 2, 4], 1e6)
    flops = budget_curve(record, "flops")
    assert list(flops.budget) == [3.2e8, 6.4e8, 9.6e8]
    assert accuracy_at(flops, 4.8e8) == pytest.approx(0.3)  # halfway from 0.2 to 0.4
    assert accuracy_at(flops, 8.0e8) == pytest.approx(0.45)
    assert accuracy_at(flops, 9.6e8) == pytest.approx(0.5)
    assert accuracy_at(flops, 1e8) is None and accuracy_at(flops, 1e9) is None
    time = budget_curve(record, "time")
    assert accuracy_at(time, 3.0) == pytest.approx(0.45)  # between 2 s (0.4) and 4 s (0.5)


def test_common_budgets_lie_where_every_curve_is_defined() -> None:
    a = budget_curve(_cell("a", 0, [(1, 0.1), (2, 0.2)], [10, 20], [1, 2], 3.2e7), "flops")
    b = budget_curve(_cell("b", 0, [(1, 0.1), (2, 0.2)], [10, 40], [1, 2], 2e7), "flops")
    # a: 3.2e8 .. 6.4e8, b: 2e8 .. 8e8 -> up to 6.4e8; a quarter (1.6e8) is below a's start
    assert common_budgets([a, b]) == pytest.approx([3.2e8, 6.4e8])
    c = budget_curve(_cell("c", 0, [(1, 0.1)], [10], [1], 1e9), "flops")  # starts past a's end
    assert common_budgets([a, c]) == []


def test_budget_table_reads_each_seed_at_the_budget_then_averages() -> None:
    """Two models, three seeds each; at 640 MFLOP model a's seeds read 0.4, 0.5, 0.6, mean
    50.0 % with the t-interval 50 -+ t(0.975, 2) * 10 / sqrt(3) (t from a printed table)."""
    records = []
    for seed, top in enumerate((0.4, 0.5, 0.6)):  # a: 0.2 at 3.2e8 rising to `top` at 6.4e8
        records.append(_cell("a", seed, [(1, 0.2), (2, top)], [320, 640], [1, 2], 1e6))
        records.append(_cell("b", seed, [(1, 0.1), (2, 0.1)], [100, 800], [1, 2], 1e6))
    runs = Runs(tuple(records), {"lra": ("listops",)})
    flops = next(t for t in budget_tables(runs) if t.name == "budget_flops_lra_tiny_listops")
    assert flops.headers == ("model", "320 MFLOP", "640 MFLOP")
    assert flops.rows[0][1].text == "20.0 [20.0, 20.0]"  # every seed starts at 0.2
    half = 4.3027 * 10.0 / np.sqrt(3)  # 24.84
    assert (
        flops.rows[0][2].text == f"50.0 [{50 - half:.1f}, {50 + half:.1f}]" == "50.0 [25.2, 74.8]"
    )
    assert flops.rows[1][1].text.startswith("10.0") and "n = 3 seeds" in flops.title


def test_non_dominated_matches_a_brute_force_check() -> None:
    rng = np.random.default_rng(1)
    cost, accuracy = rng.integers(1, 5, 8).astype(float), rng.integers(0, 4, 8) / 4
    expected = [
        not any(
            cost[k] <= cost[m] and accuracy[k] >= accuracy[m]
            and (cost[k] < cost[m] or accuracy[k] > accuracy[m])
            for k in range(8)
        )
        for m in range(8)
    ]  # fmt: skip
    assert list(non_dominated(cost, accuracy)) == expected


def _acc(model: str, seed: int, accuracy: float) -> Record:
    return Record("r", "lra", "listops", model, "tiny", seed, "ok", metrics={"accuracy": accuracy})


def test_front_probability_on_planted_models() -> None:
    """cheap: 1 FLOP at ~30 %; strong: 4 FLOPs at ~80 %; dominated: 8 FLOPs at ~50 % (more
    costly and less accurate than strong in every replicate); close: 4.1 FLOPs at strong's
    accuracy give or take its seed spread, so it is on the front in some replicates only."""
    planted = {
        "cheap": (1.0, [0.29, 0.30, 0.31]),
        "strong": (4.0, [0.78, 0.80, 0.82]),
        "dominated": (8.0, [0.49, 0.50, 0.51]),
        "close": (4.1, [0.76, 0.80, 0.84]),
    }
    by_model = {
        m: {"listops": [_acc(m, s, a) for s, a in enumerate(accs)]}
        for m, (_, accs) in planted.items()
    }
    points = {p.model: p for p in pareto_front(by_model, {m: c for m, (c, _) in planted.items()})}
    assert points["cheap"].probability == 1.0 and points["cheap"].on_front
    assert points["strong"].probability > 0.7 and points["strong"].on_front
    assert points["dominated"].probability == 0.0 and not points["dominated"].on_front
    assert 0.05 < points["close"].probability < 0.95  # uncertain: neither 0 nor 1
    assert points["strong"].low <= 0.8 <= points["strong"].high
