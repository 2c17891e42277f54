"""A run's plan (`bench.run_plan.RunPlan`) checked against the registries and resolved into one
config per task and sweep variant, with the settings of models' own fields beside it
(`suites.model_fields`)."""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from bench import registries
from bench.config import Override, for_task, parse_override
from bench.run_plan import RunPlan
from bench.runner.sweep import NO_SWEEP, Variant, parse_axis, variants
from models.errors import InputError
from models.registry import own_fields
from suites.config import MODEL_FIELDS, CellConfig, Scale, split_model_own
from suites.model_fields import check_own, check_planned
from suites.spec import SuiteSpec, TaskSpec


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan checked against the registries, with each task's resolved config (the fields
    every model shares) and its settings of models' own fields."""

    plan: RunPlan
    suite: SuiteSpec
    scale: Scale
    tasks: dict[str, TaskSpec]
    configs: dict[str, CellConfig]
    overrides: tuple[Override, ...] = field(default=())
    # sweep variant key -> (the Variant, {task: config}); the one "" variant without a sweep
    variants: dict[str, tuple[Variant, dict[str, CellConfig]]] = field(default_factory=dict)
    # sweep variant key ("" without one) -> task -> {own field: value}: the scale's
    # `model_own`, then the `--set`s and swept values of `model.FIELD` that no ModelConfig has
    model_own: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def config(self, task: str, variant: str = "") -> CellConfig:
        """The resolved config of `task` at sweep point `variant` (the shared fields)."""
        if not variant:
            return self.configs[task]
        return self.variants[variant][1][task]

    def own(self, task: str, variant: str = "") -> dict[str, Any]:
        """The settings of models' own fields of `task` at sweep point `variant`, for
        `models.registry.build_model` (each model reads the ones its fields class declares)."""
        return self.model_own[variant][task]

    def model_fields(self, task: str, variant: str, model: str) -> dict[str, Any]:
        """`model`'s own fields at (task, variant), every one resolved (its class's defaults
        updated by `own`); {} for a model without own fields."""
        fields = own_fields(model, self.own(task, variant), registries.MODELS)
        return {} if fields is None else dataclasses.asdict(fields)

    def cell_config(self, task: str, variant: str, model: str) -> dict[str, dict[str, Any]]:
        """A cell's whole resolved config as JSON-ready nested dicts (what its record carries):
        {"model": the shared fields and this model's own, "train": ..., "data": ...,
        "measure": ...}."""
        config = self.config(task, variant).to_dict()
        config["model"] = {**config["model"], **self.model_fields(task, variant, model)}
        return config

    def planned_model_fields(self, task: str) -> dict[str, dict[str, Any]]:
        """{model: its own fields} at `task` for each planned model that declares any (the
        manifest's `model_fields`, the dry run's config line)."""
        resolved = {m: self.model_fields(task, "", m) for m in self.plan.models}
        return {model: fields for model, fields in resolved.items() if fields}

    def variant(self, key: str) -> Variant:
        return self.variants[key][0] if key else NO_SWEEP


def resolve(plan: RunPlan) -> ResolvedPlan:
    """Check names (unknown ones raise with the nearest names) and resolve every task's config."""
    suite = registries.SUITES.get(plan.suite)
    if plan.scale not in suite.scales:
        raise InputError(
            f"unknown scale {plan.scale!r} for suite {plan.suite!r}; "
            f"scales: {', '.join(suite.scales)}"
        )
    scale = suite.scales[plan.scale]
    for model in plan.models:
        registries.MODELS.get(model)
    tasks = {t: registries.TASKS.get(f"{plan.suite}/{t}") for t in plan.tasks}
    outside = [t for t in plan.tasks if scale.tasks and t not in scale.tasks]
    if outside:
        raise InputError(
            f"scale {plan.scale!r} of {plan.suite} has no task {outside[0]!r}; its tasks: "
            f"{', '.join(scale.tasks)} (drop --tasks, or pick another scale: bench list suites)"
        )
    if not plan.seeds:
        raise InputError("a run needs at least one seed")
    for task, _ in plan.task_data_dirs:
        if task not in suite.tasks:
            raise InputError(
                f"--data-dir {task}=...: {plan.suite} has no task {task!r}; "
                f"tasks: {', '.join(suite.tasks)}"
            )
    if plan.threads is not None and plan.threads < 1:
        raise InputError(f"--threads {plan.threads}: need at least 1")
    overrides = tuple(parse_override(text, suite.tasks) for text in plan.overrides)
    for text, override in zip(plan.overrides, overrides, strict=True):
        _check_planned(override, plan.models, f"--set {text}")
    for text in plan.sweep:
        axis = parse_axis(text)
        first = parse_override(f"{axis.key}={axis.values[0]}", suite.tasks)
        _check_planned(first, plan.models, f"--sweep {text}")

    def resolve_all(point: tuple[Override, ...]) -> tuple[dict[str, CellConfig], dict]:
        configs, own = {}, {}
        for t in plan.tasks:
            shared, own_set = split_model_own(for_task(point, t))
            configs[t] = with_generator(tasks[t], scale.resolve(t, shared))
            own[t] = {**scale.model_own, **own_set}
            check_own(own[t], plan.models, registries.MODELS, configs[t].model, where=t)
        return configs, own

    configs, own = resolve_all(overrides)
    swept, swept_own = {}, {}
    for variant in variants(plan.sweep, suite.tasks) if plan.sweep else ():
        point = tuple(parse_override(text, suite.tasks) for text in variant.overrides)
        configs_at, swept_own[variant.key] = resolve_all(overrides + point)
        swept[variant.key] = (variant, configs_at)
    return ResolvedPlan(
        plan, suite, scale, tasks, configs, overrides, swept, {"": own, **swept_own}
    )


def _check_planned(override: Override, planned: tuple[str, ...], given: str) -> None:
    """A setting of a model's own field must reach a planned model (suites.model_fields)."""
    section, _, name = override.key.partition(".")
    if section == "model" and name not in MODEL_FIELDS:
        check_planned(name, planned, registries.MODELS, given)


def with_generator(task: TaskSpec, cfg: CellConfig) -> CellConfig:
    """`cfg` with `data.generator` checked against the task's generators and, when empty, set to
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
        raise InputError(
            f"{task.key}: data.generator={generator!r} is not one of its generators: {choices}"
        )
    return cfg


def new_run_id(plan: RunPlan) -> str:
    """`suite-scale-YYYYmmdd-HHMMSS-xxxxxx`: sorted by start time, and a random suffix so that
    runs started in the same second (a CI matrix, a shell loop) never share a directory."""
    return f"{plan.suite}-{plan.scale}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
