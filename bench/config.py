"""`--set [task.]section.field=value` overrides, parsed against the config dataclasses of
`suites.config` (and `models.config.ModelConfig`):

    model.dim=128              every task's model.dim
    model.proj_len=64          a model's own field: only the models that declare it (linformer)
    train.steps=200            every task's train.steps
    listops.data.max_len=2048  only the listops task
    measure.min_time_s=2       how a cell is measured (suites.config.MeasureConfig)

Unknown keys and values of the wrong type are `ConfigError`s that name the valid fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from models.registry import MODELS, field_type
from suites.config import MODEL_FIELDS, ConfigError, config_field
from suites.model_fields import own_field


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
    if section == "model" and name not in MODEL_FIELDS:  # a model's own (suites.model_fields)
        # the models registered (`bench.registries.discover()`, run by every command first)
        target = own_field(name, MODELS)
    else:
        target = config_field(section, name)
    return Override(task, f"{section}.{name}", _convert(raw, target, path))


def for_task(overrides: Iterable[Override], task: str) -> dict[str, Any]:
    """{"section.field": value} of the overrides that apply to `task` (later ones win)."""
    return {o.key: o.value for o in overrides if o.task in (None, task)}


_CONVERTERS = {"int": int, "float": float, "str": str}


def _convert(raw: str, target: dataclasses.Field[Any], path: str) -> Any:
    type_name = field_type(target)
    if type_name == "bool":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"--set {path}={raw}: expected true or false")
        return raw.lower() in ("true", "1")
    try:
        return _CONVERTERS[type_name](raw)
    except ValueError:
        raise ConfigError(f"--set {path}={raw}: expected a value of type {type_name}") from None
