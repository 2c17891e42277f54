"""Which accuracies are chance level: within noise of the majority-class rate of the test split.

A classifier that always answers the majority class scores the majority rate p; on n test
examples a score that is really p shows up with a binomial standard error sqrt(p (1 - p) / n).
A seed-mean accuracy at most `SIGMAS` standard errors above p (or below it) has learnt nothing
that the test split can show, so tables mark it and never rank it best: seven Pathfinder cells at
50.00 % are seven ties with a coin, not seven winners. When a record lacks its test-split size
only a score at or below the majority rate is marked.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from bench.records import Record
from bench.report.frame import model_label

SIGMAS = 2.0
CHANCE_MARK = "°"
CHANCE_NOTE = (
    "° chance level: within 2 standard errors of the majority-class rate on the test split "
    "(what always answering the most frequent class scores); not ranked."
)

Key = tuple[str, str, str, str]  # suite, scale, task, model label (a sweep point: its own)


def noise_margin(majority: float, n_test: int | None) -> float:
    """SIGMAS binomial standard errors of a score of `majority` on `n_test` examples (0 when the
    size is unknown)."""
    if not n_test:
        return 0.0
    return SIGMAS * math.sqrt(majority * (1.0 - majority) / n_test)


SEED_CHANCE_MARK = "§"
SEED_CHANCE_NOTE = (
    "§ some seeds at chance level (within 2 standard errors of the majority-class rate) though "
    "the mean is not: {}."
)


def seeds_at_chance(records: Sequence[Record]) -> dict[Key, tuple[int, int]]:
    """(suite, scale, task, model label) -> (ok seeds at chance level, ok seeds), for every
    cell with at least one seed at chance: a collapsed seed is visible even when the mean is
    not."""
    seeds: dict[Key, list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and "accuracy" in r.metrics and "majority_accuracy" in r.metrics:
            seeds[(r.suite, r.scale, r.task, model_label(r))].append(r)
    out = {}
    for key, group in seeds.items():
        at_chance = 0
        for r in group:
            n_test = r.data.get("n_test")
            majority = r.metrics["majority_accuracy"]
            margin = noise_margin(majority, n_test if isinstance(n_test, int) else None)
            at_chance += r.metrics["accuracy"] <= majority + margin
        if at_chance:
            out[key] = (at_chance, len(group))
    return out


def chance_level(records: Sequence[Record]) -> set[Key]:
    """The (suite, scale, task, model label) whose mean accuracy over its ok seeds is chance
    level."""
    seeds: dict[Key, list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and "accuracy" in r.metrics and "majority_accuracy" in r.metrics:
            seeds[(r.suite, r.scale, r.task, model_label(r))].append(r)
    marked = set()
    for key, group in seeds.items():
        accuracy = sum(r.metrics["accuracy"] for r in group) / len(group)
        majority = sum(r.metrics["majority_accuracy"] for r in group) / len(group)
        sizes = [r.data.get("n_test") for r in group]
        n_test = min(sizes) if all(isinstance(n, int) and n > 0 for n in sizes) else None
        if accuracy <= majority + noise_margin(majority, n_test):
            marked.add(key)
    return marked
