"""Review 2, item 16: default run ids had one-second resolution, so two runs started in the same
second got the same id (and the second was refused as 'already holds a run'). Now each default
id carries a random suffix after the time."""

from __future__ import annotations

import re

from bench.run_plan import RunPlan
from bench.runner import new_run_id
from bench.runner.run_dir import check_run_id


def test_ids_made_together_differ_and_are_valid() -> None:
    plan = RunPlan(suite="smoke", scale="tiny", models=("m",), tasks=("t",), seeds=(0,))
    ids = [new_run_id(plan) for _ in range(50)]
    assert len(set(ids)) == len(ids)
    for run_id in ids:
        assert re.fullmatch(r"smoke-tiny-\d{8}-\d{6}-[0-9a-f]{6}", run_id), run_id
        assert check_run_id(run_id) == run_id
