"""A run's plan (`bench.run_plan.RunPlan`) checked against the registries and resolved into one
config per task and sweep variant."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from bench import catalog
from bench.config import Override, for_task, parse_override
from bench.measure.cell import MeasureConfig
from bench.run_plan import RunPlan
from bench.runner.sweep import NO_SWEEP, Variant, variants
from suites.config import CellConfig, Scale
from suites.spec import SuiteSpec, TaskSpec


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan checked against the registries, with each task's resolved config."""

    plan: RunPlan
    suite: SuiteSpec
    scale: Scale
    tasks: dict[str, TaskSpec]
    configs: dict[str, CellConfig]
    overrides: tuple[Override, ...] = field(default=())
    # sweep variant key -> (the Variant, {task: config}); the one "" variant without a sweep
    variants: dict[str, tuple[Variant, dict[str, CellConfig]]] = field(default_factory=dict)

    def config(self, task: str, variant: str = "") -> CellConfig:
        """The resolved config of `task` at sweep point `variant`."""
        if not variant:
            return self.configs[task]
        return self.variants[variant][1][task]

    def shared_config(self, task: str, variant: str = "") -> dict[str, dict[str, Any]]:
        """The task's resolved config as JSON-ready sections (model, train, data, measure)."""
        config = self.config(task, variant).to_dict()
        config["measure"] = dataclasses.asdict(self.measure(task).latency)
        return config

    def variant(self, key: str) -> Variant:
        return self.variants[key][0] if key else NO_SWEEP

    def measure(self, task: str) -> MeasureConfig:
        """The task's measurement rules: the scale's preset and the `measure.*` overrides."""
        from bench.measure.settings import measure_config

        return measure_config(self.plan.scale, for_task(self.overrides, task))


def resolve(plan: RunPlan) -> ResolvedPlan:
    """Check names (unknown ones raise with the nearest names) and resolve every task's config."""
    suite = catalog.SUITES.get(plan.suite)
    if plan.scale not in suite.scales:
        raise ValueError(
            f"unknown scale {plan.scale!r} for suite {plan.suite!r}; "
            f"scales: {', '.join(suite.scales)}"
        )
    scale = suite.scales[plan.scale]
    for model in plan.models:
        catalog.MODELS.get(model)
    tasks = {t: catalog.TASKS.get(f"{plan.suite}/{t}") for t in plan.tasks}
    if not plan.seeds:
        raise ValueError("a run needs at least one seed")
    for task, _ in plan.task_data_dirs:
        if task not in suite.tasks:
            raise ValueError(
                f"--data-dir {task}=...: {plan.suite} has no task {task!r}; "
                f"tasks: {', '.join(suite.tasks)}"
            )
    if plan.threads is not None and plan.threads < 1:
        raise ValueError(f"--threads {plan.threads}: need at least 1")
    overrides = tuple(parse_override(text, suite.tasks) for text in plan.overrides)
    cell_overrides = tuple(o for o in overrides if not o.key.startswith("measure."))

    def resolve_all(point: tuple[Override, ...]) -> dict[str, CellConfig]:
        return {
            t: with_generator(tasks[t], scale.resolve(t, for_task(point, t))) for t in plan.tasks
        }

    configs = resolve_all(cell_overrides)
    swept = {}
    for variant in variants(plan.sweep, suite.tasks) if plan.sweep else ():
        point = cell_overrides + tuple(
            parse_override(text, suite.tasks) for text in variant.overrides
        )
        swept[variant.key] = (variant, resolve_all(point))
    resolved = ResolvedPlan(plan, suite, scale, tasks, configs, overrides, swept)
    for task in plan.tasks:
        resolved.measure(task)  # a bad measure.* value fails here, not after training
    return resolved


def with_generator(task: TaskSpec, cfg: CellConfig) -> CellConfig:
    """`cfg` with `data.generator` checked against the task's variants and, when empty, set to
    the task's default (its first), so manifests and records name the data actually drawn."""
    generator = cfg.data.generator
    if not generator:
        if not task.generators:
            return cfg
        return dataclasses.replace(
            cfg, data=dataclasses.replace(cfg.data, generator=task.generators[0])
        )
    if generator not in task.generators:
        choices = ", ".join(task.generators) or "none (drop data.generator)"
        raise ValueError(
            f"{task.key}: data.generator={generator!r} is not one of its generator variants: "
            f"{choices}"
        )
    return cfg


def new_run_id(plan: RunPlan) -> str:
    return f"{plan.suite}-{plan.scale}-{time.strftime('%Y%m%d-%H%M%S')}"
