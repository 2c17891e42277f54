"""The machine's load around each cell: the 1-minute load average before and after, recorded in
the metrics of each ok cell, and a warning in the record when it exceeded the core count (the
cell then shared the CPUs with other work, and every timing of it is noise)."""

from __future__ import annotations

import dataclasses
import os

from bench.records import BUSY_KEY, LOAD_AFTER_KEY, LOAD_BEFORE_KEY, Record


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def busy_warning(before: float | None, after: float | None, cores: int | None) -> str:
    """Why the cell's timings are noise, or '' when the load stayed within the core count."""
    loads = [x for x in (before, after) if x is not None]
    if not loads or not cores or max(loads) <= cores:
        return ""
    return f"load average {max(loads):.1f} > {cores} cores: its timings are noise"


def with_load(record: Record, before: float | None, after: float | None) -> Record:
    """An ok `record` with the load averages (and the busy warning, if any) in its metrics;
    any other record unchanged (it has no timings, and no metrics)."""
    if record.status != "ok":
        return record
    extra: dict[str, object] = {}
    if before is not None:
        extra[LOAD_BEFORE_KEY] = before
    if after is not None:
        extra[LOAD_AFTER_KEY] = after
    warning = busy_warning(before, after, os.cpu_count())
    if warning:
        extra[BUSY_KEY] = warning
    return dataclasses.replace(record, metrics={**record.metrics, **extra})
