"""Runs a suite: `plan` (suite x models x tasks x seeds -> cells, resolved configs), `manifest`
(what the run directory records at the start), `execute` (the in-process launcher: every cell
in order, records appended as they finish, resume) and `cell` (one cell -> one record)."""

from bench.runner.cell import ProgressFactory, run_cell
from bench.runner.execute import execute, load_task_data
from bench.runner.manifest import start
from bench.runner.plan import RunPlan, new_run_id, plan_from_manifest, resolve

__all__ = [
    "ProgressFactory",
    "RunPlan",
    "execute",
    "load_task_data",
    "new_run_id",
    "plan_from_manifest",
    "resolve",
    "run_cell",
    "start",
]
