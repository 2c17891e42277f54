"""What differs between the two runs of `bench compare`, printed before any figure: the
configuration (the `--set` overrides as given, then every resolved config field whose value
differs and in which cells), the commit (sha, dirty), the environment (CPU, its capability,
torch, threads, ...) and the plan (suite, scale, seeds, device). What is the same is one line.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.manifest import Manifest
from bench.records import Record
from bench.report.config_groups import flat_config

ENVIRONMENT_KEYS = (
    *("cpu", "cpu_capability", "gpu_name", "cuda", "torch", "python", "torch_threads"),
    "cpu_count",
)
MAX_FIELDS = 8  # config fields listed; the rest are counted


@dataclass(frozen=True)
class Cause:
    """differences: one line per thing that differs (config first); same: one line naming the
    rest, or "" when everything differs."""

    differences: tuple[str, ...]
    same: str


def cause(
    base: Manifest, new: Manifest, base_records: Sequence[Record], new_records: Sequence[Record]
) -> Cause:
    """The differences of the two runs; `*_records` are the compared cells' records."""
    differences: list[str] = []
    same: list[str] = []
    config = _config_lines(base, new, base_records, new_records)
    if config:
        differences += config
    else:
        same.append("config")
    for label, b, n in (
        ("commit", _commit(base.environment), _commit(new.environment)),
        ("environment", _environment(base.environment), _environment(new.environment)),
        ("plan", _plan(base), _plan(new)),
    ):
        line = _difference(label, b, n)
        if line:
            differences.append(line)
        elif b:
            same.append(f"{label} {', '.join(b.values())}")
    return Cause(tuple(differences), "same: " + "; ".join(same) if same else "")


def _config_lines(
    base: Manifest, new: Manifest, base_records: Sequence[Record], new_records: Sequence[Record]
) -> list[str]:
    lines = []
    if base.plan.overrides != new.plan.overrides:
        lines.append(
            f"config: --set {_overrides(base.plan.overrides)} (BASE) -> "
            f"{_overrides(new.plan.overrides)} (NEW)"
        )
    if base.plan.sweep != new.plan.sweep:
        lines.append(f"config: --sweep {list(base.plan.sweep)} -> {list(new.plan.sweep)}")
    fields, one_sided = _differing_fields(base_records, new_records)
    if fields and not lines:
        lines.append("config: resolved fields differ (same --set)")
    for (key, old, now), cells in list(fields.items())[:MAX_FIELDS]:
        lines.append(f"  {key} {old} -> {now}, {_scope(cells, base_records)}")
    if len(fields) > MAX_FIELDS:
        lines.append(f"  and {len(fields) - MAX_FIELDS} more differing fields")
    if one_sided:
        lines.append(
            f"  {len(one_sided)} config field(s) in one run's records only (another schema "
            f"version): {', '.join(sorted(one_sided)[:4])}{', ...' if len(one_sided) > 4 else ''}"
        )
    return lines


def _overrides(overrides: Sequence[str]) -> str:
    return " ".join(overrides) if overrides else "none"


def _differing_fields(
    base_records: Sequence[Record], new_records: Sequence[Record]
) -> tuple[dict[tuple[str, str, str], list[Record]], set[str]]:
    """(field, BASE value, NEW value) -> the BASE records of the cells where it differs, over
    the fields both records have; and the fields only one side's records have (a record of an
    older schema, migrated, lacks the fields added since: not a change of configuration)."""
    new_by_cell = {r.cell: r for r in new_records}
    fields: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
    one_sided: set[str] = set()
    base_keys: set[str] = set()
    new_keys: set[str] = set()
    for b in base_records:
        n = new_by_cell.get(b.cell)
        if n is None or not b.config or not n.config:
            continue
        old, now = flat_config(b.config), flat_config(n.config)
        base_keys |= old.keys()
        new_keys |= now.keys()
        for key in sorted(old.keys() & now.keys()):
            if old[key] != now[key]:
                fields[(key, _value(old[key]), _value(now[key]))].append(b)
    one_sided = base_keys ^ new_keys
    return dict(fields), one_sided


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _scope(cells: Sequence[Record], records: Sequence[Record]) -> str:
    """'all tasks', the tasks or the models whose every cell differs, else a count of cells."""
    if len({r.cell for r in cells}) == len({r.cell for r in records if r.config}):
        return "all tasks"
    for what, key in (("tasks", lambda r: r.task), ("models", lambda r: r.model)):
        names = sorted({key(r) for r in cells})
        every = {r.cell for r in records if key(r) in names and r.config}
        if every == {r.cell for r in cells}:
            return f"{what} {', '.join(names)}"
    return f"{len(cells)} cells"


def _commit(env: Mapping[str, Any]) -> dict[str, str]:
    sha = env.get("git_sha")
    if not sha:
        return {}
    return {"sha": str(sha)[:10], "dirty": "dirty" if env.get("git_dirty") else "clean"}


def _environment(env: Mapping[str, Any]) -> dict[str, str]:
    """Each known fact as it reads alone ('torch 2.13.0+cpu', '1 thread')."""
    shown = {"cuda": "CUDA {}", "torch": "torch {}", "python": "python {}",
             "torch_threads": "{} thread(s)", "cpu_count": "{} cores"}  # fmt: skip
    return {
        k: shown.get(k, "{}").format(env[k]) for k in ENVIRONMENT_KEYS if env.get(k) is not None
    }


def _plan(m: Manifest) -> dict[str, str]:
    p = m.plan
    return {
        "suite": f"{p.suite}/{p.scale}",
        "device": p.device,
        "seeds": "seeds " + ",".join(map(str, p.seeds)),
    }


def _difference(label: str, base: Mapping[str, str], new: Mapping[str, str]) -> str:
    """'label: a -> b; c -> d' over the keys whose values differ ('' when none do)."""
    keys = [k for k in dict.fromkeys([*base, *new]) if base.get(k) != new.get(k)]
    if not keys:
        return ""
    parts = [f"{base.get(k, '(none)')} -> {new.get(k, '(none)')}" for k in keys]
    return f"{label}: " + "; ".join(parts)
