"""The record and manifest schema versions, and the one migration that brings a run written by an
older uoe-bench to the current schema when it is read (nothing on disk is rewritten).

Versions:
1. records without `measurement_error`.
2. records without `variant`, `variant_values`, `placement` (no sweeps; every cell in-process).
3. records without their resolved config; manifests without a version, with the latency
   sampling rules beside the configs (`measure`), the sweep points' configs in
   `variant_configs`, and efficiency records carrying `*_rel` ratios and `relative_to`.
4. (current) every record carries its resolved config (`config`: model, train, data and measure
   sections, the model section with that model's own fields), so a record copied out of its
   run still says what it measured; the manifest is versioned, its configs hold the measure
   section, and the efficiency ratios are the report's to compute (`bench.report.relative`).
   Later version-4 records of trained cells add the optional `test_predictions`
   (`bench.predictions`); a record without it reads as `{}` (no migration needed). Records
   before `flops_fwd_per_example_calflops` carry `flops_fwd_per_example_linear_only` (F.linear
   calls alone) instead: another figure, still declared, so it is read as itself (no migration).

Imports nothing heavy: reports read old runs without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.errors import InputError

SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
# Metrics that older efficiency records carried and the report now computes.
_DROPPED_METRICS = (
    *("train_steps_per_s_rel", "train_steps_per_cpu_s_rel", "memory_peak_train_bytes_rel"),
    "relative_to",
)


class SchemaError(InputError):
    """A record or manifest of a schema version this uoe-bench cannot read."""


def check_version(version: Any, what: str) -> int:
    if version not in READABLE_VERSIONS:
        raise SchemaError(
            f"{what} schema_version {version!r} is not one of {READABLE_VERSIONS}; this version "
            "of uoe-bench cannot read it (a newer one wrote it: upgrade uoe-bench)"
        )
    return int(version)


def migrate_manifest(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest dict of any readable version as the current version's dict. A manifest without
    a version is version 3 (manifests were not versioned before 4)."""
    version = check_version(raw.get("schema_version", 3), "manifest")
    out = dict(raw)
    if version < 4:
        measure = out.pop("measure", {}) or {}
        out.pop("variant_configs", None)  # records carry their own config from version 4 on
        configs = out.get("configs", {})
        out["configs"] = {task: _with_measure(c, measure.get(task)) for task, c in configs.items()}
    out["schema_version"] = SCHEMA_VERSION
    return out


def migrate_record(raw: Mapping[str, Any], manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record dict of any readable version as the current version's dict. `manifest` is its
    run's manifest as stored on disk (not migrated): an older record takes its config from the
    manifest's configs of its task (its sweep point's from `variant_configs`), or {} when there
    is no manifest or it holds none."""
    version = check_version(raw.get("schema_version"), "record")
    out = dict(raw)
    if version < 4:
        out["config"] = _old_config(raw, manifest or {})
        metrics = out.get("metrics") or {}
        out["metrics"] = {k: v for k, v in metrics.items() if k not in _DROPPED_METRICS}
    out["schema_version"] = SCHEMA_VERSION
    return out


def _old_config(record: Mapping[str, Any], manifest: Mapping[str, Any]) -> dict[str, Any]:
    task, variant = record.get("task"), record.get("variant", "")
    if variant:
        configs = manifest.get("variant_configs", {}).get(variant, {}).get("configs", {})
    else:
        configs = manifest.get("configs", {})
    config = configs.get(task)
    if not config:
        return {}
    return _with_measure(config, manifest.get("measure", {}).get(task))


def _with_measure(config: Mapping[str, Any], measure: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {section: dict(fields) for section, fields in config.items()}
    if measure and "measure" not in out:
        out["measure"] = dict(measure)
    return out
