"""Which records of several runs may share a table cell: only those whose resolved configs agree.

A run's manifest holds each task's resolved config (model, train, data sections; the cell seed
is not part of it). Two runs' records of the same (suite, task, model, scale, seed) are the same
measurement only when those configs agree: then the later run's record replaces the earlier.
When the configs of a task differ between the runs, each config is a variant of the task, kept
under its own label, the task name plus what differs (`listops [train.steps=100]`), so tables
and plots show them as separate columns and rows instead of averaging a step-count difference
as if it were seed spread.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from bench.records import Record

Config = dict[str, Any]  # {"train.steps": 100, ...}; empty when the manifest holds none


def flat_config(manifest: Mapping[str, Any], task: str) -> Config:
    """The task's resolved config from a manifest as {"section.field": value} ({} if absent)."""
    sections = manifest.get("configs", {}).get(task, {})
    return {f"{s}.{k}": v for s, fields in sections.items() for k, v in fields.items()}


def fingerprint(config: Config) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def difference_labels(configs: list[Config], run_ids: list[str]) -> list[str]:
    """For distinct configs of one task, a short label of each: the keys that differ between
    them with this config's values; the run id when the manifests cannot tell (no configs)."""
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]
    labels = []
    for config, run_id in zip(configs, run_ids, strict=True):
        if not config:
            labels.append(f"run {run_id}")
            continue
        shown = [f"{k}={config[k]}" for k in differing if k in config]
        labels.append(", ".join(shown) or f"run {run_id}")
    return labels


@dataclasses.dataclass(frozen=True)
class Merged:
    """The kept records (a task with variants renamed to its labels), each suite's task names in
    order with the variants in place of the task, and one note per task that has variants."""

    records: tuple[Record, ...]
    task_order: dict[str, tuple[str, ...]]
    notes: tuple[str, ...]
    configs: dict[tuple[str, str], Config]  # (suite, task or variant label) -> its config


def merge_runs(
    runs: Iterable[tuple[Record, Config]], task_order: Mapping[str, Iterable[str]]
) -> Merged:
    """Latest record per (cell, config); tasks seen with several configs become variants."""
    latest: dict[tuple[Any, str], tuple[Record, Config]] = {}
    for record, config in runs:
        latest[(record.cell, fingerprint(config))] = (record, config)
    by_task: dict[tuple[str, str, str], dict[str, tuple[Config, str]]] = {}
    for record, config in latest.values():
        variants = by_task.setdefault((record.suite, record.scale, record.task), {})
        variants.setdefault(fingerprint(config), (config, record.run_id))
    label_of: dict[tuple[str, str, str, str], str] = {}
    notes = []
    for (suite, scale, task), variants in by_task.items():
        if len(variants) < 2:
            continue
        configs, run_ids = zip(*variants.values(), strict=True)
        labels = difference_labels(list(configs), list(run_ids))
        for key, label in zip(variants, labels, strict=True):
            label_of[(suite, scale, task, key)] = f"{task} [{label}]"
        notes.append(
            f"{suite}/{task} at scale {scale} was run with {len(variants)} different configs; "
            f"each is its own column or row ({'; '.join(labels)}), never averaged together"
        )
    records = []
    configs: dict[tuple[str, str], Config] = {}
    for record, config in latest.values():
        label = label_of.get((record.suite, record.scale, record.task, fingerprint(config)))
        records.append(dataclasses.replace(record, task=label) if label else record)
        configs.setdefault((record.suite, label or record.task), config)
    order = {}
    for suite, tasks in task_order.items():
        names: list[str] = []
        for task in tasks:
            variants = [r.task for r in records if r.suite == suite and _variant_of(r.task, task)]
            names += list(dict.fromkeys(variants)) or [task]
        order[suite] = tuple(dict.fromkeys(names))
    return Merged(tuple(records), order, tuple(notes), configs)


def _variant_of(name: str, task: str) -> bool:
    return name == task or name.startswith(f"{task} [")
