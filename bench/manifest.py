"""A run's manifest (`manifest.json`): what the run covers (its plan), each task's resolved
config, where it ran (environment, numerics, launcher, kernels) and the figures its suite
declares, as one typed, frozen `Manifest` with a schema version. Read through the schema
migration (`bench.schema`), so a run written by an older uoe-bench reads as the current one.
Imports nothing heavy: reports read manifests without torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.jsonsafe import dumps_finite
from bench.run_plan import RunPlan
from bench.schema import SCHEMA_VERSION, migrate_manifest
from models.errors import InputError
from suites.atomic import write_text_atomic
from suites.metric import Metric

MANIFEST_FILE = "manifest.json"
COMMAND_FILE = "command.txt"


@dataclass(frozen=True)
class Manifest:
    """One run's manifest.

    configs: task -> its resolved config (model, train, data, measure sections) of the fields
        every model shares; model_fields: task -> model -> that model's own fields (only models
        that declare any). A cell's whole config is in its record (`Record.config`).
    kernels: task -> model -> part -> the grouped-GEMM policy the dispatcher described before
        any forward (the path each part ran is the cell's `gemm_kernels`).
    kernel_tuning: how paths are picked (`bench.kernel_tuning.KernelTuning`: autotune or the
        rule, and why; the table file, its machine key and the choices it held at the start).
    suite_metrics: the figures the suite declares beyond the harness's own.
    data_dir_changes: each `--resume --data-dir` that replaced the data directories.
    """

    run_id: str
    created_at: str
    plan: RunPlan
    argv: tuple[str, ...] = ()
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model_fields: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    launcher: Mapping[str, Any] = field(default_factory=dict)
    reference_model: str | None = None
    suite_metrics: tuple[Metric, ...] = ()
    kernels: Mapping[str, Any] = field(default_factory=dict)
    kernel_tuning: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    numerics: Mapping[str, Any] = field(default_factory=dict)
    data_dir_changes: tuple[Mapping[str, Any], ...] = ()
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["plan"] = self.plan.to_dict()
        out["argv"] = list(self.argv)
        out["suite_metrics"] = [m.to_dict() for m in self.suite_metrics]
        out["data_dir_changes"] = [dict(c) for c in self.data_dir_changes]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Manifest:
        """A manifest dict of any readable schema version (migrated first). ValueError naming
        what is wrong when it is not one."""
        current = migrate_manifest(raw)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(current) - known)
        if unknown:
            raise ValueError(f"unknown fields {', '.join(unknown)}")
        if not isinstance(current.get("plan"), Mapping):
            raise ValueError("no plan")
        try:
            return cls(
                **{
                    **current,
                    "plan": RunPlan.from_dict(current["plan"]),
                    "argv": tuple(current.get("argv", ())),
                    "suite_metrics": tuple(
                        Metric.from_dict(m) for m in current.get("suite_metrics", ())
                    ),
                    "data_dir_changes": tuple(current.get("data_dir_changes", ())),
                }
            )
        except KeyError as err:
            raise ValueError(f"missing field {err.args[0]!r} in its plan") from None
        except TypeError as err:
            raise ValueError(str(err)) from None

    def config(self, task: str) -> Mapping[str, Any]:
        """The task's resolved shared config ({} when the manifest holds none)."""
        return self.configs.get(task, {})


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    """Write `manifest.json` of a run directory atomically (never seen half-written); a
    non-finite number is written as the string "NaN", "Infinity" or "-Infinity" (valid JSON)."""
    path = Path(run_dir) / MANIFEST_FILE
    write_text_atomic(path, dumps_finite(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_raw_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest's JSON object as stored (before migration: older records are migrated
    with it); InputError naming the file and the recovery when there is none or it is not
    JSON."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.exists():
        if (Path(run_dir) / "records.jsonl").exists():  # a run whose manifest was lost
            raise InputError(
                f"no {MANIFEST_FILE} in {run_dir}, but its records.jsonl is there. "
                f"{recovery_hint(run_dir)}"
            )
        raise InputError(f"no {MANIFEST_FILE} in {run_dir}; is it a `bench run` directory?")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is corrupt (not JSON: {err}). {recovery_hint(run_dir)}") from None
    if not isinstance(raw, dict):
        problem = f"a JSON {type(raw).__name__}"
        raise InputError(f"{path} is corrupt ({problem}). {recovery_hint(run_dir)}")
    return raw


def read_manifest(run_dir: Path) -> Manifest:
    """The run's manifest, migrated to the current schema; ValueError naming the file, what is
    wrong and the recovery when it cannot be read (truncated, emptied, overwritten)."""
    raw = read_raw_manifest(run_dir)
    try:
        return Manifest.from_dict(raw)
    except ValueError as err:
        path = Path(run_dir) / MANIFEST_FILE
        raise InputError(f"{path} is corrupt ({err}). {recovery_hint(run_dir)}") from None


def recovery_hint(run_dir: Path) -> str:
    """How to go on when a run's manifest cannot be read: its records are intact, but its plan
    is lost; rerun the stored command into a new run directory."""
    stored = Path(run_dir) / COMMAND_FILE
    try:
        command = stored.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        command = ""
    again = f"`{command}` (from {stored})" if command else "the command that started it"
    return (
        f"The finished cells in {Path(run_dir) / 'records.jsonl'} are intact, but the run cannot "
        f"be resumed without its plan: restore {MANIFEST_FILE} from a copy, or rerun {again} "
        "with a new --run-id"
    )
