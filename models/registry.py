"""One generic name -> object registry, and `MODELS`, the registry of model builders.

Registering a name twice raises (a silent overwrite would make results depend on import order).
Looking up an unknown name raises `UnknownNameError`, which lists the nearest registered names.
`baselines/` fills `MODELS` (one file per model); suites keep their own registries of this type.

A model with settings of its own (Linformer's `proj_len`) declares them as a frozen dataclass
with a default for every field, its fields class, and registers it with its builder:
`@MODELS.register(name, description, fields=LinformerFields)`. The builder then takes the
instance as a third argument, `(cfg, task, own)`, defaulting to the class's defaults, so
`MODELS.get(name)(cfg, task)` still builds it. `build_model` resolves the instance from a
mapping of settings, each model reading the ones its class declares; the run's config layer
(`suites.model_fields`) type-checks `--set model.FIELD` against the declaring class. The class
checks its ranges in `__post_init__` (`models.config.check_field`) and may define
`check_shape(cfg: ModelConfig)` for a bound that involves the shared shape (UoE: attn_top_k <=
heads), which `build_model` and plan resolution call.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from torch import nn

from models.config import ModelConfig, ModelTask
from models.errors import InputError

T = TypeVar("T")


class UnknownNameError(InputError, KeyError):
    """A name that no entry of the registry has; `str()` lists the nearest names."""

    def __init__(self, kind: str, name: str, suggestions: list[str], known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}.{hint} Registered {kind}s: {listing}.")

    def __str__(self) -> str:  # KeyError's str() would add quotes around the message
        return str(self.args[0])


class DuplicateNameError(ValueError):
    """A name registered twice."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered object with its name, a one-line description for `bench list`, and, for a
    model with settings of its own, its fields class (None: it has none)."""

    name: str
    obj: T
    description: str
    fields: type | None = None


class Registry(Generic[T]):
    """Named objects of one kind ("model", "suite", "task")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, obj: T, description: str, fields: type | None = None) -> T:
        """Register `obj` under `name` (with its fields class, if any); raises
        DuplicateNameError if the name is taken."""
        if not name or name != name.strip():
            raise ValueError(f"invalid {self.kind} name {name!r}")
        if name in self._entries:
            raise DuplicateNameError(f"{self.kind} {name!r} is already registered")
        if not description.strip():
            raise ValueError(f"{self.kind} {name!r} needs a one-line description")
        if fields is not None:
            _check_fields_class(name, fields, self._entries.values())
        self._entries[name] = Entry(name, obj, description.strip(), fields)
        return obj

    def register(self, name: str, description: str, fields: type | None = None) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(obj: T) -> T:
            return self.add(name, obj, description, fields)

        return decorate

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            nearest = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            raise UnknownNameError(self.kind, name, nearest, known) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


# (shape, task) -> an nn.Module whose forward(inputs, lengths) returns a ModelOutput; a model
# registered with a fields class takes its instance too: (shape, task, own fields).
ModelBuilder = Callable[..., nn.Module]

MODELS: Registry[ModelBuilder] = Registry("model")

FIELD_TYPES = ("int", "float", "str", "bool")  # what `--set model.FIELD=VALUE` can parse
NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})


def field_type(f: dataclasses.Field[Any]) -> str:
    """The name of a dataclass field's type ("int"), whether annotated as a string (postponed
    annotations) or as the class itself."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def own_fields(
    name: str, own: Mapping[str, Any] = NO_SETTINGS, registry: Registry[ModelBuilder] = MODELS
) -> Any | None:
    """Model `name`'s own fields: its fields class's defaults updated with the entries of `own`
    that the class declares (the others are other models' settings), range-checked by the
    class; None for a model registered without a fields class."""
    fields = registry.entry(name).fields
    if fields is None:
        return None
    declared = {f.name for f in dataclasses.fields(fields)}
    return fields(**{k: v for k, v in own.items() if k in declared})


def build_model(
    name: str, cfg: ModelConfig, task: ModelTask, own: Mapping[str, Any] = NO_SETTINGS
) -> nn.Module:
    """Build model `name` for (cfg, task), its own fields resolved from `own` (`own_fields`) and
    checked against the shared shape where its class defines `check_shape(cfg)`."""
    builder = MODELS.get(name)
    fields = own_fields(name, own)
    if fields is None:
        return builder(cfg, task)
    if hasattr(fields, "check_shape"):
        fields.check_shape(cfg)
    return builder(cfg, task, fields)


def _check_fields_class(model: str, fields: type, others: Iterable[Entry[Any]]) -> None:
    """A fields class is a frozen dataclass whose every field has a default and a type that
    `--set` can parse, named like no shared `ModelConfig` field, and typed like the same field
    of any other model (one `--set model.FIELD` is parsed once for all of them)."""
    params = getattr(fields, "__dataclass_params__", None)
    if not isinstance(fields, type) or params is None or not params.frozen:
        raise TypeError(f"model {model!r}: fields={fields!r} must be a frozen dataclass")
    shared = {f.name for f in dataclasses.fields(ModelConfig)}
    seen = {
        f.name: (entry.name, field_type(f))
        for entry in others
        if entry.fields is not None
        for f in dataclasses.fields(entry.fields)
    }
    for f in dataclasses.fields(fields):
        where = f"model {model!r}: {fields.__name__}.{f.name}"
        if f.name in shared:
            raise ValueError(f"{where} is a shared ModelConfig field; give it another name")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{where} needs a default")
        kind = field_type(f)
        if kind not in FIELD_TYPES:
            raise TypeError(f"{where} has type {kind}; use one of {', '.join(FIELD_TYPES)}")
        other, other_kind = seen.get(f.name, (model, kind))
        if other_kind != kind:
            raise TypeError(f"{where} is {kind}, but model {other!r} declares it as {other_kind}")
