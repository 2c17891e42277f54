"""The suite and task registries and the discovery that fills them.

Each package under `suites/` registers its suite and tasks with `register_suite` when imported;
`register_all()` imports every such package, so a new suite is one new package here.
"""

from __future__ import annotations

import importlib
import pkgutil

import suites
from models.registry import Registry
from suites.spec import SuiteSpec, TaskSpec

SUITES: Registry[SuiteSpec] = Registry("suite")
TASKS: Registry[TaskSpec] = Registry("task")  # keyed "suite/task"


def register_suite(suite: SuiteSpec, tasks: list[TaskSpec]) -> None:
    """Register a suite and its tasks (as `suite/task`) together, checking they agree."""
    names = tuple(t.name for t in tasks)
    if names != suite.tasks:
        raise ValueError(f"suite {suite.name!r} lists tasks {suite.tasks}, specs give {names}")
    for task in tasks:
        TASKS.add(task.key, task, task.description)
    SUITES.add(suite.name, suite, suite.description)


def register_all() -> None:
    """Import every suite package (a sub-package of `suites`), so that its registration runs."""
    for info in pkgutil.iter_modules(suites.__path__):
        if info.ispkg:
            importlib.import_module(f"suites.{info.name}")
