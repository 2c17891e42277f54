"""The Pareto front of test accuracy against forward FLOPs per example, with each model's
probability of lying on it: the fraction of bootstrap replicates (of every model's accuracy) in
which the model is non-dominated, i.e. no other model has at most its FLOPs and at least its
accuracy, one of the two strictly. FLOPs are deterministic (counted), so only accuracy is
resampled. A model's accuracy is its mean over the tasks every model of the (suite, scale) has;
a replicate averages the tasks' replicates. Imports no torch.

The replicates are the accuracy table's (`bench.report.accuracy_stats.cell_stats`): the two-level
bootstrap of seeds then test examples where records keep their predictions, else seeds plus the
test split's binomial error (the table's notes say which cells fell back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.records import Record
from bench.report.accuracy_stats import tasks_replicates
from bench.report.display import si_scale
from bench.report.frame import Runs, model_label
from bench.report.stats import N_RESAMPLES, percentile_interval
from bench.report.table import Cell, Table

FRONT_METRIC = "flops_fwd_per_example"


def non_dominated(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """(M,) bool: model m is on the front of lower cost and higher accuracy. `cost` (M,),
    `accuracy` (M,) or (R, M) for R replicates at once (then (R, M))."""
    acc = np.atleast_2d(accuracy)  # (R, M)
    cheaper_or_equal = cost[None, :, None] <= cost[None, None, :]  # (1, K, M): k vs m
    better_or_equal = acc[:, :, None] >= acc[:, None, :]  # (R, K, M)
    strictly = (cost[None, :, None] < cost[None, None, :]) | (acc[:, :, None] > acc[:, None, :])
    dominated = (cheaper_or_equal & better_or_equal & strictly).any(axis=1)  # (R, M)
    front = ~dominated
    return front[0] if np.ndim(accuracy) == 1 else front


@dataclass(frozen=True)
class FrontPoint:
    model: str
    cost: float  # forward FLOPs per example, mean over the tasks
    accuracy: float  # mean over the tasks of the seed mean
    low: float  # 95 % percentile interval of the bootstrap replicates
    high: float
    on_front: bool  # on the front of the means
    probability: float  # fraction of replicates in which it is non-dominated
    seeds: int


def pareto_front(
    records_by_model: Mapping[str, Mapping[str, Sequence[Record]]],
    cost: Mapping[str, float],
) -> list[FrontPoint]:
    """records_by_model: model -> task -> its ok seeds' records (every model the same tasks);
    cost: model -> forward FLOPs per example. The front points, in the given model order."""
    models = list(records_by_model)
    replicates = np.stack(  # (R, M): each model's replicate of its mean over tasks
        [tasks_replicates(records_by_model[m].values()) for m in models],
        axis=1,
    )
    means = np.asarray(
        [
            np.mean([np.mean([r.metrics["accuracy"] for r in s]) for s in by_task.values()])
            for by_task in records_by_model.values()
        ]
    )
    costs = np.asarray([cost[m] for m in models], dtype=float)
    front = non_dominated(costs, means)
    probability = non_dominated(costs, replicates).mean(axis=0)
    low, high = np.transpose([percentile_interval(replicates[:, i]) for i in range(len(models))])
    seeds = [min(len(s) for s in records_by_model[m].values()) for m in models]
    return [
        FrontPoint(
            m, costs[i], means[i], low[i], high[i], bool(front[i]), float(probability[i]), seeds[i]
        )
        for i, m in enumerate(models)
    ]


def front_groups(runs: Runs) -> dict[tuple[str, str], tuple[list[str], list[FrontPoint]]]:
    """(suite, scale) -> (the tasks averaged: those every model with the figures has, its
    front)."""
    out = {}
    ok = [r for r in runs.records if r.status == "ok" and "accuracy" in r.metrics]
    for suite, scale in dict.fromkeys((r.suite, r.scale) for r in ok):
        mine = [r for r in ok if (r.suite, r.scale) == (suite, scale)]
        mine = [r for r in mine if isinstance(r.metrics.get(FRONT_METRIC), int | float)]
        by_model: dict[str, dict[str, list[Record]]] = {}
        for r in mine:
            by_model.setdefault(model_label(r), {}).setdefault(r.task, []).append(r)
        if len(by_model) < 2:
            continue
        shared = set.intersection(*(set(t) for t in by_model.values()))
        tasks = [t for t in runs.tasks(suite) if t in shared]
        if not tasks:
            continue
        chosen = {m: {t: by_task[t] for t in tasks} for m, by_task in by_model.items()}
        cost = {
            m: float(np.mean([r.metrics[FRONT_METRIC] for t in tasks for r in by_task[t]]))
            for m, by_task in chosen.items()
        }
        out[(suite, scale)] = (tasks, pareto_front(chosen, cost))
    return out


FRONT_NOTE = (
    "On front: no other model has at most its forward FLOPs and at least its mean accuracy. "
    "P(front): fraction of {} bootstrap replicates of every model's accuracy in which it is "
    "non-dominated; interval: 95 % percentile interval of the replicates, the accuracy table's "
    "bootstrap (seeds, then test examples where the records keep their predictions)."
)


def pareto_tables(runs: Runs) -> list[Table]:
    """Per (suite, scale): model, forward FLOPs, accuracy [interval], on front, P(front)."""
    tables = []
    for (suite, scale), (tasks, points) in front_groups(runs).items():
        shown = si_scale([p.cost for p in points], "FLOP")
        rows = tuple(
            (
                Cell(p.model),
                Cell(f"{p.cost / shown.divisor:.4g}"),
                Cell(f"{100 * p.accuracy:.2f} [{100 * p.low:.2f}, {100 * p.high:.2f}]"),
                Cell(str(p.seeds)),
                Cell("yes" if p.on_front else "no"),
                Cell(f"{p.probability:.2f}"),
            )
            for p in sorted(points, key=lambda p: p.cost)
        )
        headers = ("model", f"forward FLOPs per example ({shown.unit})", "test accuracy (%)",
                   "seeds", "on front", "P(front)")  # fmt: skip
        title = (
            f"Pareto front of test accuracy against forward FLOPs on {suite} at scale {scale}, "
            f"mean over {', '.join(tasks)}"
        )
        notes = (FRONT_NOTE.format(N_RESAMPLES),)
        tables.append(Table(f"pareto_{suite}_{scale}", title, headers, rows, notes))
    return tables
