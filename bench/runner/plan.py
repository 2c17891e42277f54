"""What a run covers: the plan (suite, scale, models, tasks, seeds, overrides, sweep, where data
lives), checked against the registries and resolved into one config per task and sweep variant.
The plan is stored in the run's manifest, so `--resume` rebuilds exactly the same one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench import catalog
from bench.config import Override, for_task, parse_override
from bench.records import CellId
from bench.runner.sweep import NO_SWEEP, Variant, variants
from suites.config import CellConfig, Scale
from suites.spec import SuiteSpec, TaskSpec


@dataclass(frozen=True)
class RunPlan:
    """What a run covers; everything needed to redo or resume it (stored in the manifest)."""

    suite: str
    scale: str
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()  # raw `--set` strings
    data_dir: str | None = None
    cache_dir: str = ""
    device: str = "cpu"
    profile: bool = False  # write a profiler trace of a few training steps per ok cell
    sweep: tuple[str, ...] = ()  # raw `--sweep KEY=V1,V2` strings (bench.runner.sweep)

    def cells(self) -> list[CellId]:
        """Task-major order, so each task's data is loaded once; then variant, model, seed."""
        return [
            CellId(self.suite, task, model, self.scale, seed, variant.key)
            for task in self.tasks
            for variant in variants(self.sweep)
            for model in self.models
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the manifest (`from_manifest` reads it back)."""
        return {
            **self.__dict__,
            "models": list(self.models),
            "tasks": list(self.tasks),
            "seeds": list(self.seeds),
            "overrides": list(self.overrides),
            "sweep": list(self.sweep),
        }


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

    def variant(self, key: str) -> Variant:
        return self.variants[key][0] if key else NO_SWEEP


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
    overrides = tuple(parse_override(text, suite.tasks) for text in plan.overrides)
    configs = {t: scale.resolve(t, for_task(overrides, t)) for t in plan.tasks}
    swept = {}
    for variant in variants(plan.sweep, suite.tasks) if plan.sweep else ():
        point = overrides + tuple(parse_override(text, suite.tasks) for text in variant.overrides)
        swept[variant.key] = (
            variant,
            {t: scale.resolve(t, for_task(point, t)) for t in plan.tasks},
        )
    return ResolvedPlan(plan, suite, scale, tasks, configs, overrides, swept)


def new_run_id(plan: RunPlan) -> str:
    return f"{plan.suite}-{plan.scale}-{time.strftime('%Y%m%d-%H%M%S')}"


def plan_from_manifest(manifest: dict[str, Any]) -> RunPlan:
    raw = manifest["plan"]
    return RunPlan(
        suite=raw["suite"],
        scale=raw["scale"],
        models=tuple(raw["models"]),
        tasks=tuple(raw["tasks"]),
        seeds=tuple(raw["seeds"]),
        overrides=tuple(raw["overrides"]),
        data_dir=raw["data_dir"],
        cache_dir=raw["cache_dir"],
        device=raw["device"],
        profile=raw.get("profile", False),
        sweep=tuple(raw.get("sweep", ())),
    )
