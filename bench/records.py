"""The record schema, the append-only JSONL store, and the run manifest (read and written here;
`bench.environment` says what goes into it). Imports no torch, so reports stay light.

One JSON line per (suite, task, model, scale, seed, sweep variant) cell in
`<run_dir>/records.jsonl`, appended and fsync'ed as soon as the cell finishes, so a killed run
loses no finished cell. `manifest.json` describes the run (environment, seeds, resolved configs).
Metrics are plain numbers in SI units (seconds, bytes, flops) with the unit in the name; a
missing result is absent, never zero.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench import records_scan
from bench.jsonsafe import dumps_finite
from bench.stop_signals import stop_signals_held
from suites.cache import write_text_atomic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# Versions this code reads: 1 lacks `measurement_error` (its measurements never failed visibly);
# 2 lacks `variant`, `variant_values` and `placement` (no sweeps, every cell ran in-process).
READABLE_VERSIONS = (1, 2, 3)
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "manifest.json"
# The machine's 1-minute load around an ok cell, and the warning when it exceeded the core count
# (bench/runner/machine_load.py writes them; `bench compare` does not gate a busy cell's timings).
LOAD_BEFORE_KEY, LOAD_AFTER_KEY, BUSY_KEY = (
    "load_avg_1m_before",
    "load_avg_1m_after",
    "machine_busy",
)

Status = Literal["ok", "skipped", "error", "oom"]
STATUSES: tuple[str, ...] = ("ok", "skipped", "error", "oom")


@dataclass(frozen=True)
class CellId:
    """The identity of one cell of a run."""

    suite: str
    task: str
    model: str
    scale: str
    seed: int
    variant: str = ""  # the sweep point, e.g. "experts=8,top_k=2"; "" outside a sweep

    def __str__(self) -> str:
        text = f"{self.suite}/{self.task}/{self.model}/{self.scale}/seed{self.seed}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class Record:
    """The result of one cell.

    measurement_error: set on an `ok` cell whose training finished but whose measurements
    (FLOPs, latency, memory, trace) failed: why. Its measured figures are absent.
    metrics: at least `accuracy`, `dev_accuracy`, `majority_accuracy`, `train_loss_final`,
    `train_time_s`, `examples_per_s` when status is ok; curves are lists of numbers.
    routing: per-layer routing statistics of MoE models (empty for dense models).
    artifacts: paths of files the cell wrote, relative to the run directory.
    variant: the sweep point's stable key (part of the identity); variant_values: the swept
    `--set` keys and their values at that point, e.g. {"model.experts": 8}.
    placement: where the cell ran: launcher, hostname, node, device name, GPU index, and
    `device_shared` (true when other cells ran on its device at the same time, so its timings
    are disturbed; `bench compare` does not gate them).
    """

    run_id: str
    suite: str
    task: str
    model: str
    scale: str
    seed: int
    status: Status
    reason: str = ""
    measurement_error: str = ""
    params_total: int | None = None
    params_active: int | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    routing: list[Any] = field(default_factory=list)
    data: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    started_at: str = ""
    duration_s: float = 0.0
    variant: str = ""
    variant_values: Mapping[str, Any] = field(default_factory=dict)
    placement: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if self.status != "ok" and not self.reason:
            raise ValueError(f"a {self.status} record needs a reason")
        if self.measurement_error and self.status != "ok":
            raise ValueError("only an ok record can carry a measurement_error")

    @property
    def cell(self) -> CellId:
        return CellId(self.suite, self.task, self.model, self.scale, self.seed, self.variant)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Record:
        version = raw.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(
                f"record schema_version {version} is not one of {READABLE_VERSIONS}; this "
                "version of uoe-bench cannot read it"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"record has unknown fields: {', '.join(sorted(unknown))}")
        return cls(**raw)


class RecordStore:
    """Append-only JSONL records of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORDS_FILE

    def append(self, record: Record) -> None:
        """Write one record as one line and force it to disk before returning."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        line = record.to_json() + "\n"
        # Under `bench run` a SIGINT/SIGTERM waits until the line is on disk: never a cut record.
        with stop_signals_held(), open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[Record]:
        """All valid records, in append order. A garbled line (cut by a kill, edited, not UTF-8)
        is skipped with a warning naming the file and line; `repair()` moves it aside."""
        result = records_scan.scan(self.path, Record.from_dict)
        records_scan.warn_garbled(self.path, result, "skipped (bench run --resume moves it aside)")
        return result.records

    def repair(self) -> Path | None:
        """Before appending: keep every valid record (one lacking only its final newline too),
        move garbled lines to the quarantine file (returned) so their cells are rerun."""
        return records_scan.repair(self.path, Record.from_dict)

    def latest(self) -> dict[CellId, Record]:
        """The last record of each cell (a resumed run appends newer ones)."""
        return {r.cell: r for r in self.read()}


def read_records(run_dir: Path) -> list[Record]:
    """The latest record of every cell of a run directory."""
    store = RecordStore(run_dir)
    if not store.path.exists():
        raise FileNotFoundError(f"no {RECORDS_FILE} in {run_dir}; is it a `bench run` directory?")
    return list(store.latest().values())


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write `manifest.json` of a run directory atomically (never seen half-written); a
    non-finite number is written as the string "NaN", "Infinity" or "-Infinity" (valid JSON)."""
    path = Path(run_dir) / MANIFEST_FILE
    write_text_atomic(path, dumps_finite(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run directory; ValueError naming the file and the recovery when it is
    not a JSON object with a `plan` (truncated, emptied, overwritten)."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {MANIFEST_FILE} in {run_dir}; is it a `bench run` directory?")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
        problem = "" if isinstance(manifest, dict) else f"a JSON {type(manifest).__name__}"
        if not problem and not isinstance(manifest.get("plan"), dict):
            problem = "no plan"
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        problem = f"not JSON: {err}"
    if problem:
        raise ValueError(f"{path} is corrupt ({problem}). {recovery_hint(run_dir)}")
    return manifest


COMMAND_FILE = "command.txt"


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
        f"The finished cells in {Path(run_dir) / RECORDS_FILE} are intact, but the run cannot be "
        f"resumed without its plan: restore {MANIFEST_FILE} from a copy, or rerun {again} with a "
        "new --run-id"
    )


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
