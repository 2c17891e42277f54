"""Models' own fields in a run's config: the `model.FIELD` settings that are no `ModelConfig`
field but a field of a model's own fields class (Linformer's `proj_len`, the Performers'
`random_features`), registered with its builder (`models.registry`).

Such a setting, from a `--set`, a `--sweep` axis or a scale's `model_own`, is typed by the
declaring class, reaches only the models that declare it (`models.registry.build_model` gives
each model the settings its class declares) and is recorded only for them. Here: the lookup of
such a field in a model registry (a name that no model declares is refused with every field
listed), and the checks a plan runs on them before any cell starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from models.config import ModelConfig
from models.errors import InputError
from models.registry import ModelBuilder, Registry, own_fields
from suites.config import MODEL_FIELDS, ConfigError, check_type


def declarations(models: Registry[ModelBuilder]) -> dict[str, list[str]]:
    """Own field name -> the registered models that declare it (sorted by model)."""
    out: dict[str, list[str]] = {}
    for entry in models.entries():
        for f in dataclasses.fields(entry.fields) if entry.fields is not None else ():
            out.setdefault(f.name, []).append(entry.name)
    return out


def own_field(name: str, models: Registry[ModelBuilder]) -> dataclasses.Field[Any]:
    """The field behind `model.NAME`, NAME being no ModelConfig field: the field of the first
    model that declares it (registration checks that all of them type it alike). A name no
    registered model declares raises ConfigError listing the shared fields and each model's."""
    for entry in models.entries():
        for f in dataclasses.fields(entry.fields) if entry.fields is not None else ():
            if f.name == name:
                return f
    models_of: dict[tuple[str, ...], list[str]] = {}  # the fields of a class -> its models
    for entry in models.entries():
        if entry.fields is not None:
            declared = tuple(sorted(f.name for f in dataclasses.fields(entry.fields)))
            models_of.setdefault(declared, []).append(entry.name)
    own = "; ".join(
        f"{', '.join(names)}: {', '.join(declared)}" for declared, names in models_of.items()
    )
    raise ConfigError(
        f"unknown field model.{name}; model fields: {', '.join(sorted(MODEL_FIELDS))}; "
        f"fields of some models only: {own or '(none registered)'}"
    )


def check_planned(
    name: str, planned: Sequence[str], models: Registry[ModelBuilder], given: str
) -> None:
    """Refuse a setting of own field `name` (`given`: the `--set` or `--sweep` that gave it)
    when none of the `planned` models declares it: it would change nothing."""
    own_field(name, models)  # an unknown name lists every field
    declaring = declarations(models)[name]
    if not set(declaring) & set(planned):
        raise ConfigError(
            f"{given}: model.{name} is a field of {', '.join(declaring)} only, and the plan has "
            f"none of them (models: {', '.join(planned)}); add one to --models or drop the setting"
        )


def check_own(
    own: Mapping[str, Any],
    planned: Sequence[str],
    models: Registry[ModelBuilder],
    shape: ModelConfig,
    where: str = "",
) -> None:
    """Check the own-field settings `own` ({field: value}) of one task: each is a field some
    registered model declares, of its type; each planned model's fields, resolved from them,
    pass their class's range checks and its `check_shape(shape)` where it defines one."""
    prefix = f"{where}: " if where else ""
    for name, value in own.items():
        check_type(value, own_field(name, models), f"{prefix}model.{name}")
    for model in planned:
        try:
            fields = own_fields(model, own, models)
            if hasattr(fields, "check_shape"):
                fields.check_shape(shape)
        except ValueError as exc:
            raise InputError(f"{prefix}{exc}") from None
