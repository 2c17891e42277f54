"""Runs a suite: `plan` (suite x models x tasks x seeds x sweep variants -> cells, resolved
configs; `sweep` expands --sweep), `manifest` (what the run directory records at the start),
`execute` (the driver: pending cells to the launcher it is given, records appended as they
finish, resume), `launch` (the in-process launcher, and `make_launcher` from a run's
`launch_options`; `parallel` its schedule with --workers > 1: training side by side, timing
alone; `ray_launch` the Ray one, with `ray_options`, `ray_worker`, `ray_progress`),
`task_data` (a task's data, loaded alike under every launcher), `placement` (where a cell ran),
`machine_load` (the load average around a cell) and `cell` (one cell -> one record)."""

from bench.run_plan import RunPlan
from bench.runner.cell import ProgressFactory, run_cell
from bench.runner.execute import execute
from bench.runner.launch import InProcessLauncher, Launcher, make_launcher
from bench.runner.manifest import start
from bench.runner.plan import new_run_id, resolve
from bench.runner.task_data import load_task_data

__all__ = [
    "InProcessLauncher",
    "Launcher",
    "ProgressFactory",
    "RunPlan",
    "execute",
    "load_task_data",
    "make_launcher",
    "new_run_id",
    "resolve",
    "run_cell",
    "start",
]
