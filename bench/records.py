"""The record of one cell (`Record`) and the append-only JSONL store of a run's records.

One JSON line per (suite, task, model, scale, seed, sweep variant) cell in
`<run_dir>/records.jsonl`, appended and fsync'ed as soon as the cell finishes, so a killed run
loses no finished cell. A record carries its resolved config, so one copied out of its run still
says what it measured; records of older schemas are migrated as they are read (`bench.schema`,
with their run's stored manifest). Figures are plain numbers in SI units, each declared in the
metric catalog (`bench.metrics`); a missing result is absent, never zero. The run's manifest is
`bench.manifest`. Imports no torch, so reports stay light.
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
from bench.cell_id import CellId
from bench.manifest import read_raw_manifest
from bench.record_origin import check_origin
from bench.record_types import check_types
from bench.schema import SCHEMA_VERSION, check_version, migrate_manifest, migrate_record
from bench.stop_signals import stop_signals_held
from models.errors import InputError
from suites.safe_files import open_nofollow

log = logging.getLogger(__name__)

__all__ = ["CellId", "Record", "RecordStore", "RecordWriteError", "read_records"]

RECORDS_FILE = "records.jsonl"
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
    config: the cell's resolved config, {"model": the shared fields and this model's own,
    "train": ..., "data": ..., "measure": ...} ({} when an older run's manifest held none).
    test_predictions: an ok trained cell's per-example test predictions, keyed to the test
    split's content hash (`bench.predictions`); {} for efficiency cells, failed cells and records
    written before the field existed (the report then has seed-level statistics only).
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
    config: Mapping[str, Any] = field(default_factory=dict)
    test_predictions: Mapping[str, Any] = field(default_factory=dict)
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
        """A record of the current schema version (`read` migrates older ones first)."""
        if check_version(raw.get("schema_version"), "record") != SCHEMA_VERSION:
            raise ValueError(
                f"record schema_version {raw.get('schema_version')} needs migrating first "
                "(bench.schema.migrate_record, with its run's manifest)"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"record has unknown fields: {', '.join(sorted(unknown))}")
        check_types(raw)
        return cls(**raw)


class RecordWriteError(InputError):
    """A records file could not be written (disk full, a read-only folder): which file, the
    cause, what was left of the write, and how to go on."""

    def __init__(self, path: Path, err: OSError, left: str) -> None:
        cause = err.strerror or str(err)
        super().__init__(
            f"cannot write {path} ({cause}); {left}. Free space or make the folder writable, "
            f"then rerun the unfinished cells: bench run --resume {path.parent}"
        )


def _roll_back(fd: int, size: int) -> str:
    """Cut the file back to `size` after a failed append; what was left, for the message."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError as err:  # reported, not hidden: resume quarantines the cut line
        return f"the partial record could not be removed ({err.strerror or err})"
    return "the partial record was removed"


class RecordStore:
    """Append-only JSONL records of one run directory. Records of an older schema are migrated
    as they are read, with the run's stored manifest (their config comes from it); a record
    whose run_id or config is not the manifest's is another run's and is set aside like a
    garbled line (`bench.record_origin`)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORDS_FILE
        self._manifest: dict[str, Any] | None = None
        self._migrated: dict[str, Any] | None = None

    def _parse(self, raw: Mapping[str, Any]) -> Record:
        if raw.get("schema_version") != SCHEMA_VERSION:
            raw = migrate_record(raw, self._stored_manifest())
        record = Record.from_dict(raw)
        check_origin(record, self._run_manifest())  # ForeignRecord: another run's line
        return record

    def _run_manifest(self) -> dict[str, Any]:
        """The run's manifest migrated to the current schema ({} when absent or unreadable:
        then no record can be checked against it), read once."""
        if self._migrated is None:
            stored = self._stored_manifest()
            try:
                self._migrated = migrate_manifest(stored) if stored else {}
            except ValueError:
                self._migrated = {}
        return self._migrated

    def _stored_manifest(self) -> dict[str, Any]:
        """The run's manifest as stored ({} when absent or unreadable: an old record then has no
        config), read once."""
        if self._manifest is None:
            try:
                self._manifest = read_raw_manifest(self.run_dir)
            except (FileNotFoundError, ValueError):
                self._manifest = {}
        return self._manifest

    def append(self, record: Record) -> None:
        """Write one record as one line and force it to disk before returning. A write that
        fails (disk full, a read-only folder) leaves no part of the line: the file is cut back
        to its size before, and RecordWriteError names the file and the cause."""
        line = (record.to_json() + "\n").encode("utf-8")
        # Under `bench run` a SIGINT/SIGTERM waits until the line is on disk: never a cut record.
        with stop_signals_held():
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                # a link is refused (SymlinkRefused), never written through
                fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            except OSError as err:
                raise RecordWriteError(self.path, err, "nothing was written") from None
            try:
                size_before = os.fstat(fd).st_size
                try:
                    written = 0
                    while written < len(line):  # os.write may write part of the line
                        written += os.write(fd, line[written:])
                    os.fsync(fd)
                except OSError as err:
                    raise RecordWriteError(self.path, err, _roll_back(fd, size_before)) from None
            finally:
                os.close(fd)

    def read(self) -> list[Record]:
        """All valid records, in append order. A garbled line (cut by a kill, edited, not UTF-8)
        is skipped with a warning naming the file and line; `repair()` moves it aside."""
        result = records_scan.scan(self.path, self._parse)
        records_scan.warn_garbled(self.path, result, "skipped (bench run --resume moves it aside)")
        return result.records

    def repair(self) -> Path | None:
        """Before appending: keep every valid record (one lacking only its final newline too),
        move garbled lines to the quarantine file (returned) so their cells are rerun."""
        try:
            return records_scan.repair(self.path, self._parse)
        except OSError as err:  # the rewrite is atomic: the file is as it was
            raise RecordWriteError(self.path, err, "the file is unchanged") from None

    def latest(self) -> dict[CellId, Record]:
        """The last record of each cell (a resumed run appends newer ones)."""
        return {r.cell: r for r in self.read()}


def read_records(run_dir: Path) -> list[Record]:
    """The latest record of every cell of a run directory."""
    store = RecordStore(run_dir)
    if not store.path.exists():
        raise InputError(f"no {RECORDS_FILE} in {run_dir}; is it a `bench run` directory?")
    return list(store.latest().values())


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
