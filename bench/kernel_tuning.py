"""The grouped-GEMM autotune table of this machine, on disk under the cache directory, and the
tuner a run installs (`models.kernels.autotune`, `models.kernels.dispatch.use_tuner`).

`--kernels autotune` (the default) loads `<cache>/kernels/grouped_mm-<machine digest>.json`, or
starts an empty table, and times each new shape class on first use; every new choice is written
back atomically (merged with what another process wrote meanwhile: a choice once on disk is
kept, so runs after the first agree). `--kernels rule` keeps the fixed rule. A table that cannot
be used (not JSON, not a table, another machine's, a link) is not overwritten: the run takes the
rule and says why (`KernelTuning.reason`, in the manifest and on stderr); delete the file to
tune again. `KernelTuning` is what the manifest records: the mode, the table and its choices.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.errors import InputError
from models.kernels import dispatch
from models.kernels.autotune import (
    Autotuner,
    MachineKey,
    TableRefused,
    Timer,
    TuningTable,
    machine_key,
)
from suites.atomic import write_text_atomic
from suites.safe_files import open_nofollow, refuse_link

MODES = ("autotune", "rule")
TABLE_DIR = "kernels"


@dataclass(frozen=True)
class KernelTuning:
    """How a run picks grouped-GEMM paths. mode: 'autotune' or 'rule'; table: the file (None:
    kept in the process only, no cache directory); reason: why the rule runs when autotune was
    asked for (None otherwise); choices: shape class -> path, as the table held when this was
    taken."""

    mode: str
    table: str | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    digest: str | None = None
    reason: str | None = None
    choices: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"--kernels {mode!r}: use one of {', '.join(MODES)}")
    return mode


def table_path(cache_dir: Path, key: MachineKey) -> Path:
    return Path(cache_dir) / TABLE_DIR / f"grouped_mm-{key.digest()}.json"


def read_table(path: Path, key: MachineKey) -> TuningTable:
    """The table at `path` (an empty one when there is none); TableRefused when it cannot be
    used: a link or not a regular file, not UTF-8 JSON of a table, or another machine key's."""
    if not path.exists() and not path.is_symlink():
        return TuningTable(key)
    try:
        refuse_link(path)
        fd = open_nofollow(path, os.O_RDONLY)
    except InputError as err:
        raise TableRefused("corrupt", str(err)) from None
    with open(fd, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TableRefused("corrupt", f"{path} is not UTF-8 text") from None
    try:
        return TuningTable.from_json(text, key, dispatch.IMPLEMENTATIONS)
    except TableRefused as err:
        raise TableRefused(err.kind, f"{path}: {err}") from None


def _persister(path: Path) -> Callable[[TuningTable], TuningTable]:
    """Write a grown table, merged with the file as it is now (its choices win: another
    process may have tuned a class meanwhile); return the merged table. A file that became
    unusable meanwhile is left alone, as at the start (said on stderr; the run goes on with
    its table in memory)."""

    def persist(table: TuningTable) -> TuningTable:
        try:
            merged = read_table(path, table.machine).merged(table)
        except TableRefused as err:
            print(f"bench: grouped_mm kernels: not stored ({err})", file=sys.stderr)
            return table
        write_text_atomic(path, merged.to_json())
        return merged

    return persist


def tuning_for(
    mode: str,
    cache_dir: Path | None,
    device: torch.device | str = "cpu",
    timer: Timer = dispatch.wall_timer,
) -> tuple[KernelTuning, Autotuner | None]:
    """What `mode` gives on this machine now: the record and the tuner to install (None: the
    rule). Without a cache directory the table lives in this process only (said in `table`)."""
    check_mode(mode)
    if mode == "rule":
        return KernelTuning("rule"), None
    key = machine_key(device)
    if cache_dir is None:
        tuner = Autotuner(TuningTable(key), dispatch.candidates, timer=timer)
        return KernelTuning("autotune", None, key.to_dict(), key.digest()), tuner
    path = table_path(cache_dir, key)
    base = KernelTuning("autotune", str(path), key.to_dict(), key.digest())
    try:
        table = read_table(path, key)
    except TableRefused as err:
        reason = f"{err.kind} table, the rule runs instead: {err}; delete it to tune again"
        return KernelTuning("rule", str(path), key.to_dict(), key.digest(), reason), None
    tuner = Autotuner(table, dispatch.candidates, timer=timer, persist=_persister(path))
    choices = {k: c.impl for k, c in table.choices.items()}
    return KernelTuning(**{**base.to_dict(), "choices": choices}), tuner


@contextmanager
def tuned_kernels(
    mode: str,
    cache_dir: Path | None,
    device: torch.device | str = "cpu",
    timer: Timer = dispatch.wall_timer,
) -> Iterator[KernelTuning]:
    """Install the policy `mode` gives for the duration (the previous one is restored); a
    fallback to the rule is said on stderr."""
    tuning, tuner = tuning_for(mode, cache_dir, device, timer)
    if tuning.reason is not None:
        print(f"bench: grouped_mm kernels: {tuning.reason}", file=sys.stderr)
    previous = dispatch.use_tuner(tuner)
    try:
        yield tuning
    finally:
        dispatch.use_tuner(previous)


def with_current_choices(tuning: KernelTuning) -> KernelTuning:
    """`tuning` with the choices the installed tuner holds now (those made since included)."""
    tuner = dispatch.active_tuner()
    if tuner is None or tuning.mode != "autotune":
        return tuning
    choices = {k: c.impl for k, c in tuner.table.choices.items()}
    return KernelTuning(**{**tuning.to_dict(), "choices": choices})
