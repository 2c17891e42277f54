"""One generic name -> object registry, and `MODELS`, the registry of model builders.

Registering a name twice raises (a silent overwrite would make results depend on import order).
Looking up an unknown name raises `UnknownNameError`, which lists the nearest registered names.
`baselines/` fills `MODELS` (one file per model); suites keep their own registries of this type.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from torch import nn

from models.config import ModelConfig, ModelTask

T = TypeVar("T")


class UnknownNameError(KeyError):
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
    """A registered object with its name and a one-line description for `bench list`."""

    name: str
    obj: T
    description: str


class Registry(Generic[T]):
    """Named objects of one kind ("model", "suite", "task")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, obj: T, description: str) -> T:
        """Register `obj` under `name`; raises DuplicateNameError if the name is taken."""
        if not name or name != name.strip():
            raise ValueError(f"invalid {self.kind} name {name!r}")
        if name in self._entries:
            raise DuplicateNameError(f"{self.kind} {name!r} is already registered")
        if not description.strip():
            raise ValueError(f"{self.kind} {name!r} needs a one-line description")
        self._entries[name] = Entry(name, obj, description.strip())
        return obj

    def register(self, name: str, description: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(obj: T) -> T:
            return self.add(name, obj, description)

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


# (shape, task) -> an nn.Module whose forward(inputs, lengths) returns a ModelOutput.
ModelBuilder = Callable[[ModelConfig, ModelTask], nn.Module]

MODELS: Registry[ModelBuilder] = Registry("model")
