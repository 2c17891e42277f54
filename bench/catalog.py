"""The three registries (models, suites, tasks) and the explicit discovery that fills them.

Model files in `baselines/` (and model packages listed in `MODEL_PACKAGES`) register a builder
with `@MODELS.register(...)`; suite packages in `suites/` register their suite and tasks. Adding a
model is one new file in `baselines/`: `discover()` imports every module there, so every suite,
table and test picks it up.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from torch import nn

from bench.registry import Registry
from suites.spec import SuiteSpec, TaskSpec

ModelBuilder = Callable[..., nn.Module]  # (ModelConfig, TaskSpec, max_len: int) -> nn.Module

MODELS: Registry[ModelBuilder] = Registry("model")
SUITES: Registry[SuiteSpec] = Registry("suite")
TASKS: Registry[TaskSpec] = Registry("task")

# Packages whose every module is imported by discover(); each module registers what it defines.
MODEL_PACKAGES = ("baselines", "models.uoe")
SUITE_PACKAGES = ("suites",)


def discover() -> None:
    """Import every model module and suite package so that their registrations run."""
    for package_name in MODEL_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{info.name}")
    for package_name in SUITE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg:
                importlib.import_module(f"{package_name}.{info.name}")


def register_suite(suite: SuiteSpec, tasks: list[TaskSpec]) -> None:
    """Register a suite and its tasks (as `suite/task`) together, checking they agree."""
    names = tuple(t.name for t in tasks)
    if names != suite.tasks:
        raise ValueError(f"suite {suite.name!r} lists tasks {suite.tasks}, specs give {names}")
    for task in tasks:
        TASKS.add(task.key, task, task.description)
    SUITES.add(suite.name, suite, suite.description)
