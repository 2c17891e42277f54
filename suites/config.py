"""Typed, frozen cell configuration: model (`models.config.ModelConfig`), training, data and
measurement settings, and the scale presets a suite defines them in.

A suite defines its scales (tiny | small | paper) once, as a `Scale`: one base `CellConfig`
plus per-task overrides {"section.field": value}, and its settings of models' own fields
(`model_own`, e.g. Linformer's proj_len: `suites.model_fields`); the user's `--set` overrides
(parsed in `bench.config`) are applied last. Unknown keys and values of the wrong type are
`ConfigError`s that name the valid fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.config import ModelConfig
from models.errors import InputError
from models.registry import field_type
from suites.config_ranges import check_ranges


@dataclass(frozen=True)
class TrainConfig:
    """The shared loop: AdamW, linear warmup then linear decay to zero, gradient clipping.

    eval_every: evaluate on the dev split every this many steps (and after the last step).
    eval_examples: dev examples per evaluation; 0 means the whole dev split.
    time_budget_s: stop training once the loop's wall time (evaluations included) reaches
        this many seconds, after evaluating the last step done (the record's
        `train_stopped_at_step` says where); 0 means no budget.
    """

    batch_size: int = 32
    steps: int = 1000
    warmup_steps: int = 100
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_examples: int = 0
    time_budget_s: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    """Data request: padded length, split sizes (exact for generated data, an upper bound for
    files) and the data seed (fixed across run seeds, so seeds differ only in init and order)."""

    max_len: int = 2048
    n_train: int = 96_000
    n_dev: int = 2_000
    n_test: int = 2_000
    seed: int = 0
    # A generated task's generator, by name ("" = the task's default); Pathfinder: "lra" (as
    # LRA's data was most likely made, the default) or "intended" (suites/lra/pathfinder/draw.py).
    generator: str = ""


@dataclass(frozen=True)
class MeasureConfig:
    """How hard a cell is measured after training: latency sampling (`warmup` untimed calls,
    then samples until at least `min_count` AND their sum is at least `min_time_s`), the fvcore
    FLOP cross-check (a traced forward, slow for big models) and the profiler schedule of
    `--profile` and `bench profile` (steps skipped, traced but discarded, then recorded)."""

    warmup: int = 2
    min_count: int = 5
    min_time_s: float = 1.0
    fvcore: bool = True
    profile_wait: int = 1
    profile_warmup: int = 1
    profile_active: int = 2


# Measurement presets the suites' scales take: cheap at tiny (a whole tiny suite stays minutes),
# stricter above.
MEASURE_TINY = MeasureConfig(warmup=1, min_count=3, min_time_s=0.2)
MEASURE_SMALL = MeasureConfig(warmup=2, min_count=5, min_time_s=1.0)
MEASURE_PAPER = MeasureConfig(warmup=3, min_count=10, min_time_s=3.0)


@dataclass(frozen=True)
class CellConfig:
    """Everything one (task, model, seed) cell needs besides its identity."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS = ("model", "train", "data", "measure")
MODEL_FIELDS = frozenset(f.name for f in dataclasses.fields(ModelConfig))  # shared by every model


class ConfigError(InputError):
    """A malformed override or an unknown configuration key; the message names the valid ones."""


@dataclass(frozen=True)
class Scale:
    """A named preset: the base cell config, per-task overrides as {"train.steps": 100}, and
    its settings of models' own fields as {"proj_len": 32} (each reaches the models that
    declare it; checked against the model registry when a plan is resolved, since the registry
    is filled after the suites are imported). `tasks`: the only tasks it runs (empty: all of
    the suite's); `models`: the models it runs when `--models` names none (empty: every
    registered model)."""

    name: str
    description: str
    base: CellConfig
    per_task: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_own: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        frozen = {t: MappingProxyType(dict(o)) for t, o in self.per_task.items()}
        object.__setattr__(self, "per_task", MappingProxyType(frozen))
        object.__setattr__(self, "model_own", MappingProxyType(dict(self.model_own)))
        for overrides in self.per_task.values():
            apply_overrides(self.base, overrides)  # fail at definition time, not at run time
        shared = sorted(set(self.model_own) & MODEL_FIELDS)
        if shared:
            raise ConfigError(
                f"scale {self.name!r}: model_own sets {', '.join(shared)}, fields every model "
                "shares: set them in the base ModelConfig"
            )

    def resolve(self, task: str, user: Mapping[str, Any] = MappingProxyType({})) -> CellConfig:
        """The config of `task`: base, then this scale's task overrides, then `user`'s
        {"section.field": value} (the `--set` items that apply to this task)."""
        cfg = apply_overrides(self.base, self.per_task.get(task, {}))
        cfg = apply_overrides(cfg, user)
        check_ranges(cfg, task)
        return cfg


def split_model_own(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """{"section.field": value} -> (the settings of config fields, {field: value} of the
    `model.field` settings that are no ModelConfig field: a model's own, `suites.model_fields`)."""
    shared, own = {}, {}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section == "model" and name not in MODEL_FIELDS:
            own[name] = value
        else:
            shared[key] = value
    return shared, own


def apply_overrides(cfg: CellConfig, overrides: Mapping[str, Any]) -> CellConfig:
    """A copy of `cfg` with {"section.field": value} applied; values must already be typed."""
    sections = {s: getattr(cfg, s) for s in SECTIONS}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        target = config_field(section, name)
        check_type(value, target, key)
        sections[section] = dataclasses.replace(sections[section], **{name: value})
    return CellConfig(**sections)


def config_field(section: str, name: str) -> dataclasses.Field[Any]:
    """The dataclass field behind "section.field"; unknown names raise naming the valid ones."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r}; sections: {', '.join(SECTIONS)}")
    fields = {f.name: f for f in dataclasses.fields(_SECTION_TYPES[section])}
    if name not in fields:
        raise ConfigError(
            f"unknown field {section}.{name}; {section} fields: {', '.join(sorted(fields))}"
        )
    return fields[name]


_SECTION_TYPES = {
    "model": ModelConfig,
    "train": TrainConfig,
    "data": DataConfig,
    "measure": MeasureConfig,
}


def check_type(value: Any, target: dataclasses.Field[Any], key: str) -> None:
    """Refuse a `value` for `key` that is not of the type of the dataclass field `target`."""
    type_name = field_type(target)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }.get(type_name, True)
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected a value of type {type_name}")
