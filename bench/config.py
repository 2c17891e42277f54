"""Typed, frozen run configuration: model, training and data settings, scale presets, overrides.

A suite defines its scales (tiny | small | paper) once, as a `Scale`: one base `CellConfig`
plus per-task overrides. `--set key=value` then overrides any field:

    model.dim=128            every task's model.dim
    train.steps=200          every task's train.steps
    listops.data.max_len=2048  only the listops task

Unknown keys and values of the wrong type are errors that name the valid fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the shared encoder: the same for every model of a comparison."""

    dim: int = 64
    depth: int = 2
    heads: int = 2
    ffn_dim: int = 128
    dropout: float = 0.0
    attn_dropout: float = 0.0
    # Mixture-of-experts parts (UoE, Switch, Mixtral); dense models ignore these.
    experts: int = 4  # FFN experts (UoE: slices of the dense FFN, each ffn_dim / experts wide)
    top_k: int = 2  # FFN experts per token (Switch is top-1 by definition)
    attn_top_k: int = 1  # UoE: head-experts per token
    capacity_factor: float = 1.25  # tokens an expert may keep = factor x fair share
    balance_loss_weight: float = 0.01  # load-balancing auxiliary loss
    z_loss_weight: float = 0.001  # router z-loss (Switch)
    patch_size: int = 1  # UoE data selection: tokens per patch (1 = token-level)
    # Efficient-attention mixers; other models ignore these.
    proj_len: int = 256  # Linformer: keys/values projected along the sequence to this length
    random_features: int = 256  # Performer: FAVOR+ random features per head


@dataclass(frozen=True)
class TrainConfig:
    """The shared loop: AdamW, linear warmup then linear decay to zero, gradient clipping.

    eval_every: evaluate on the dev split every this many steps (and after the last step).
    eval_examples: dev examples per evaluation; 0 means the whole dev split.
    """

    batch_size: int = 32
    steps: int = 1000
    warmup_steps: int = 100
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_examples: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Data request: padded length, split sizes (exact for generated data, an upper bound for
    files) and the data seed (fixed across run seeds, so seeds differ only in init and order)."""

    max_len: int = 2048
    n_train: int = 96_000
    n_dev: int = 2_000
    n_test: int = 2_000
    seed: int = 0


@dataclass(frozen=True)
class CellConfig:
    """Everything one (task, model, seed) cell needs besides its identity."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


SECTIONS = ("model", "train", "data")


class ConfigError(ValueError):
    """A malformed override or an unknown configuration key; the message names the valid ones."""


@dataclass(frozen=True)
class Scale:
    """A named preset: the base cell config and per-task overrides as {"train.steps": 100}."""

    name: str
    description: str
    base: CellConfig
    per_task: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {t: MappingProxyType(dict(o)) for t, o in self.per_task.items()}
        object.__setattr__(self, "per_task", MappingProxyType(frozen))
        for overrides in self.per_task.values():
            apply_overrides(self.base, overrides)  # fail at definition time, not at run time

    def resolve(self, task: str, overrides: Iterable[Override] = ()) -> CellConfig:
        """The config of `task`: base, then this scale's task overrides, then the user's."""
        cfg = apply_overrides(self.base, self.per_task.get(task, {}))
        user = {o.key: o.value for o in overrides if o.task in (None, task)}
        return apply_overrides(cfg, user)


@dataclass(frozen=True)
class Override:
    """One parsed `--set` item. `task` is None when it applies to every task."""

    task: str | None
    key: str  # "section.field"
    value: Any


def parse_override(text: str, task_names: Iterable[str]) -> Override:
    """Parse `[task.]section.field=value`, converting the value to the field's type."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r} (e.g. train.steps=200)")
    path, raw = (part.strip() for part in text.split("=", 1))
    parts = path.split(".")
    task: str | None = None
    if len(parts) == 3:
        task, parts = parts[0], parts[1:]
        if task not in set(task_names):
            raise ConfigError(
                f"--set {text!r}: unknown task {task!r}; tasks of this suite: "
                f"{', '.join(sorted(task_names))}"
            )
    if len(parts) != 2:
        raise ConfigError(f"--set {text!r}: key must be [task.]section.field, e.g. model.dim")
    section, name = parts
    target = _field(section, name)
    return Override(task, f"{section}.{name}", _convert(raw, target, path))


def apply_overrides(cfg: CellConfig, overrides: Mapping[str, Any]) -> CellConfig:
    """A copy of `cfg` with {"section.field": value} applied; values must already be typed."""
    sections = {s: getattr(cfg, s) for s in SECTIONS}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        target = _field(section, name)
        _check_type(value, target, key)
        sections[section] = dataclasses.replace(sections[section], **{name: value})
    return CellConfig(**sections)


def _field(section: str, name: str) -> dataclasses.Field[Any]:
    if section not in SECTIONS:
        raise ConfigError(f"unknown config section {section!r}; sections: {', '.join(SECTIONS)}")
    fields = {f.name: f for f in dataclasses.fields(_SECTION_TYPES[section])}
    if name not in fields:
        raise ConfigError(
            f"unknown field {section}.{name}; {section} fields: {', '.join(sorted(fields))}"
        )
    return fields[name]


_SECTION_TYPES = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}
_CONVERTERS = {"int": int, "float": float, "str": str}


def _convert(raw: str, target: dataclasses.Field[Any], path: str) -> Any:
    type_name = str(target.type)
    if type_name == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"--set {path}={raw}: expected true or false")
        return raw.lower() in ("true", "1")
    try:
        return _CONVERTERS[type_name](raw)
    except ValueError:
        raise ConfigError(f"--set {path}={raw}: expected a value of type {type_name}") from None


def _check_type(value: Any, target: dataclasses.Field[Any], key: str) -> None:
    type_name = str(target.type)
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }.get(type_name, True)
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected a value of type {type_name}")
