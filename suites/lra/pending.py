"""Loaders for LRA tasks whose data code does not exist yet: they always raise DataUnavailable, so
running such a task writes a `skipped` record that says what is missing (never a crash or a 0)."""

from __future__ import annotations

from collections.abc import Callable

from suites.data import DataRequest, DataUnavailable, TaskData


def pending_loader(task: str, missing: str) -> Callable[[DataRequest], TaskData]:
    """A loader for `task` that reports `missing` (what has to be written or supplied)."""

    def load(request: DataRequest) -> TaskData:
        raise DataUnavailable(f"{task}: {missing}")

    load.__doc__ = f"Placeholder loader for {task}: {missing}"
    return load
