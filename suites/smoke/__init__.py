"""The smoke suite: three seeded synthetic tasks that train in seconds per model, so CI can run
every registered model end to end and compare its records with the committed reference."""

from __future__ import annotations

from suites.registry import register_suite
from suites.smoke.scales import SMOKE_SCALES
from suites.smoke.tasks import (
    FIRST_VOCAB,
    MAJORITY_VOCAB,
    MATCH_VOCAB,
    generate_first,
    generate_majority,
    generate_match,
    loader,
)
from suites.spec import SuiteSpec, TaskSpec

TASKS = [
    TaskSpec(
        "majority",
        "smoke",
        "which of two symbols is more frequent (2 classes)",
        num_classes=2,
        vocab_size=MAJORITY_VOCAB,
        num_inputs=1,
        load=loader("majority", generate_majority),
    ),
    TaskSpec(
        "first",
        "smoke",
        "the first of four symbols (4 classes): needs attention to position 0",
        num_classes=4,
        vocab_size=FIRST_VOCAB,
        num_inputs=1,
        load=loader("first", generate_first),
    ),
    TaskSpec(
        "match",
        "smoke",
        "two sequences, same dominant symbol or not (2 classes, dual encoder)",
        num_classes=2,
        vocab_size=MATCH_VOCAB,
        num_inputs=2,
        load=loader("match", generate_match),
    ),
]

register_suite(
    SuiteSpec(
        name="smoke",
        description="seconds-long synthetic tasks for CI: majority, first, match",
        tasks=tuple(t.name for t in TASKS),
        scales=SMOKE_SCALES,
    ),
    TASKS,
)
