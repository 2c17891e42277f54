"""`--data-dir`: one directory for every task (`--data-dir DIR`) or one per task
(`--data-dir listops=DIR`, repeatable), parsed and checked; `--resume` may bring new ones, which
replace the stored ones task by task and are written back to the manifest with a note of when."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from bench.manifest import Manifest, write_manifest
from bench.records import utc_now
from bench.run_plan import RunPlan
from models.errors import InputError

_TASK = re.compile(r"^([A-Za-z0-9_]+)=(.+)$")


def parse_data_dirs(values: Sequence[str]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(plain directory or None, ((task, directory), ...)); a directory that does not exist,
    two plain ones, or one task given twice is refused with what to write instead."""
    plain: str | None = None
    per_task: dict[str, str] = {}
    for value in values:
        match = _TASK.match(value)
        task, path = (match.group(1), match.group(2)) if match else (None, value)
        if not Path(path).expanduser().is_dir():
            raise InputError(
                f"--data-dir {value}: no directory {path}; give DIR (every task) or TASK=DIR"
            )
        path = str(Path(path).expanduser())
        if task is None:
            if plain is not None:
                raise InputError(
                    f"--data-dir given twice without a task ({plain}, {path}); "
                    "name the task: --data-dir TASK=DIR"
                )
            plain = path
        elif task in per_task:
            raise InputError(f"--data-dir {task}= given twice ({per_task[task]}, {path})")
        else:
            per_task[task] = path
    return plain, tuple(per_task.items())


def with_new_data_dirs(plan: RunPlan, values: Sequence[str]) -> RunPlan:
    """The stored plan with `--resume`'s data directories: a plain one replaces the plain one,
    a TASK=DIR replaces that task's."""
    plain, per_task = parse_data_dirs(values)
    merged = {**dict(plan.task_data_dirs), **dict(per_task)}
    return dataclasses.replace(
        plan, data_dir=plain or plan.data_dir, task_data_dirs=tuple(merged.items())
    )


def record_resume(run_dir: Path, manifest: Manifest, plan: RunPlan) -> None:
    """Write the resumed plan's data directories into the manifest, with when they changed."""
    old = manifest.plan
    change = {
        "at": utc_now(),
        "data_dir": [old.data_dir, plan.data_dir],
        "task_data_dirs": [dict(old.task_data_dirs), dict(plan.task_data_dirs)],
    }
    changes = (*manifest.data_dir_changes, change)
    write_manifest(run_dir, dataclasses.replace(manifest, plan=plan, data_dir_changes=changes))
