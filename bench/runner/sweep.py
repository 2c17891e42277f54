"""Sweeps over config settings: `--sweep model.experts=2,4,8 --sweep model.top_k=1,2` expands
into the cross product of its axes. Each point is a variant of every cell, applied as extra
`--set` overrides after the plan's own (so a swept key wins over a `--set` of the same key).

A variant's key is short and stable: its axes sorted by key, each written as `field=value`
(the whole `[task.]section.field` path where two axes share a field name), joined by commas:
`experts=8,top_k=2`. It is part of a cell's identity, so resume, reports and comparisons match
cells by it; the same sweep given in another flag order gives the same keys.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.config import parse_override
from suites.config import ConfigError


@dataclass(frozen=True)
class Axis:
    """One `--sweep KEY=V1,V2,...`: the override key and its values, as text."""

    key: str  # "[task.]section.field"
    values: tuple[str, ...]


@dataclass(frozen=True)
class Variant:
    """One point of a sweep: its key, the `--set` strings it adds, and the typed values."""

    key: str
    overrides: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)


NO_SWEEP = Variant("")


def parse_axis(text: str) -> Axis:
    """`KEY=V1,V2,...` -> Axis; duplicate or empty values are refused."""
    if "=" not in text:
        raise ConfigError(f"--sweep expects key=v1,v2,..., got {text!r} (e.g. model.experts=2,4)")
    key, raw = (part.strip() for part in text.split("=", 1))
    values = tuple(v.strip() for v in raw.split(","))
    if not key or not all(values):
        raise ConfigError(f"--sweep {text!r}: a key and non-empty values, e.g. model.experts=2,4")
    if len(set(values)) != len(values):
        raise ConfigError(f"--sweep {text!r}: a value is given twice")
    return Axis(key, values)


def variants(sweep: Sequence[str], task_names: Iterable[str] = ()) -> list[Variant]:
    """Every point of the cross product of the `--sweep` strings, in their value order; the one
    empty variant when there is no sweep. With `task_names`, every value is parsed against the
    config fields (a bad key or value raises ConfigError naming the valid ones)."""
    if not sweep:
        return [NO_SWEEP]
    axes = sorted((parse_axis(text) for text in sweep), key=lambda a: a.key)
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--sweep names a key twice: {', '.join(keys)}; give its values once")
    names = _short_names(keys)
    tasks = tuple(task_names)
    out = []
    for point in itertools.product(*(a.values for a in axes)):
        sets = tuple(f"{k}={v}" for k, v in zip(keys, point, strict=True))
        if tasks:
            typed = {k: parse_override(s, tasks).value for k, s in zip(keys, sets, strict=True)}
        else:
            typed = dict(zip(keys, point, strict=True))
        key = ",".join(f"{n}={v}" for n, v in zip(names, point, strict=True))
        out.append(Variant(key, sets, typed))
    return out


def _short_names(keys: Sequence[str]) -> list[str]:
    """The field name of each key, or the whole key where two keys share a field name."""
    fields = [k.rsplit(".", 1)[-1] for k in keys]
    return [f if fields.count(f) == 1 else k for f, k in zip(fields, keys, strict=True)]
