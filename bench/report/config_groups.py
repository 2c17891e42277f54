"""Which records of several runs may share a table cell: only those whose resolved configs agree.

Every record carries its resolved config (`Record.config`: model, train, data, measure sections;
the cell seed is not part of it). Two runs' records of the same (suite, task, model, scale,
seed) are the same measurement only when those configs agree: then the later run's record
replaces the earlier. When the configs of a task differ between the runs, each config is its own
config group of the task, kept under its own label, the task name plus what differs
(`listops [train.steps=100]`), so tables and plots show them as separate columns and rows
instead of averaging a step-count difference as if it were seed spread.

A model's own fields (`--set model.proj_len=64`: only Linformer has it) are in its record's
model section but not in the fields every model shares (the manifest's `configs`): they group
only the records of the models that have them, so one run's models never split a task.

A sweep point's own fields (`--sweep model.experts=2,4,8`: `Record.variant_values`) split
nothing: the record's variant already names them in its row (`switch[experts=2]`), so the sweep's
points are rows of one task column and are compared on it. Any other difference still splits.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from bench.records import Record

Config = dict[str, Any]  # {"train.steps": 100, ...}; empty when the record holds none


def flat_config(config: Mapping[str, Mapping[str, Any]]) -> Config:
    """A record's config as {"section.field": value}."""
    return {f"{s}.{k}": v for s, fields in config.items() for k, v in fields.items()}


def fingerprint(config: Config) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def difference_labels(configs: list[Config], run_ids: list[str]) -> list[str]:
    """For distinct configs of one task, a short label of each: the keys that differ between
    them with this config's values; "" for a config that has none of them (the others differ in
    fields only some models have); the run id when the records cannot tell (no config)."""
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    labels = []
    for config, run_id in zip(configs, run_ids, strict=True):
        if not config:
            labels.append(f"run {run_id}")
            continue
        labels.append(", ".join(f"{k}={config[k]}" for k in differing if k in config))
    return labels


@dataclasses.dataclass(frozen=True)
class Merged:
    """The kept records (a task with config groups renamed to their labels), each suite's task
    names in order with the groups in place of the task, one note per task that has several
    groups, and each group's config (the fields every model shares)."""

    records: tuple[Record, ...]
    task_order: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]
    configs: dict[tuple[str, str], Config]  # (suite, task or group label) -> its config


def _split(record: Record, shared_model: Iterable[str] | None) -> tuple[Config, Config]:
    """(the shared part, the model's own part) of a record's flat config less its swept fields;
    all of it is shared when the run's manifest names no shared model fields."""
    swept = set(record.variant_values)  # named by the row (the variant): never a group key
    config = {k: v for k, v in flat_config(record.config).items() if k not in swept}
    if shared_model is None:
        return config, {}
    own_keys = {f"model.{k}" for k in record.config.get("model", {})} - {
        f"model.{k}" for k in shared_model
    }
    return (
        {k: v for k, v in config.items() if k not in own_keys},
        {k: v for k, v in config.items() if k in own_keys},
    )


def merge_runs(
    runs: Iterable[tuple[Record, Iterable[str] | None]], task_order: Mapping[str, Iterable[str]]
) -> Merged:
    """Latest record per (cell, config); tasks seen with several configs become config groups.
    `runs`: each record with the model fields its run shares across models (None: unknown)."""
    latest: dict[tuple[Any, str], tuple[Record, Config, Config]] = {}
    for record, shared_model in runs:
        shared, own = _split(record, shared_model)
        latest[(record.cell, fingerprint({**shared, **own}))] = (record, shared, own)
    # a group: the task's shared config, plus a model's own fields where that model has several
    own_seen: dict[tuple[str, str, str, str], set[str]] = {}
    for record, _, own in latest.values():
        key = (record.suite, record.scale, record.task, record.model)
        own_seen.setdefault(key, set()).add(fingerprint(own))

    def group(record: Record, shared: Config, own: Config) -> Config:
        several = len(own_seen[(record.suite, record.scale, record.task, record.model)]) > 1
        return {**shared, **own} if several else shared

    by_task: dict[tuple[str, str, str], dict[str, tuple[Config, str]]] = {}
    for record, shared, own in latest.values():
        groups = by_task.setdefault((record.suite, record.scale, record.task), {})
        config = group(record, shared, own)
        groups.setdefault(fingerprint(config), (config, record.run_id))
    label_of: dict[tuple[str, str, str, str], str] = {}
    notes = []
    for (suite, scale, task), groups in by_task.items():
        if len(groups) < 2:
            continue
        configs, run_ids = zip(*groups.values(), strict=True)
        labels = difference_labels(list(configs), list(run_ids))
        for key, label in zip(groups, labels, strict=True):
            label_of[(suite, scale, task, key)] = f"{task} [{label}]" if label else task
        notes.append(
            f"{suite}/{task} at scale {scale} was run with {len(groups)} different configs; "
            f"each is its own column or row ({'; '.join(n or task for n in labels)}), never "
            "averaged together"
        )
    records = []
    configs_out: dict[tuple[str, str], Config] = {}
    for record, shared, own in latest.values():
        key = fingerprint(group(record, shared, own))
        label = label_of.get((record.suite, record.scale, record.task, key))
        records.append(dataclasses.replace(record, task=label) if label else record)
        configs_out.setdefault((record.suite, label or record.task), shared)
    order = {}
    for suite, tasks in task_order.items():
        names: list[str] = []
        for task in tasks:
            members = [r.task for r in records if r.suite == suite and _group_of(r.task, task)]
            names += list(dict.fromkeys(members)) or [task]
        order[suite] = tuple(dict.fromkeys(names))
    return Merged(tuple(records), order, tuple(notes), configs_out)


def _group_of(name: str, task: str) -> bool:
    return name == task or name.startswith(f"{task} [")
