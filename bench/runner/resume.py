"""The plan of a run directory to resume, read from its manifest; a corrupt or incomplete
manifest is refused with what is wrong and how to recover (the finished records stay valid)."""

from __future__ import annotations

from pathlib import Path

from bench.manifest import read_manifest
from bench.run_plan import RunPlan


def read_plan(run_dir: Path) -> RunPlan:
    """The stored plan of `run_dir`; ValueError naming the file and the recovery if unreadable."""
    return read_manifest(run_dir).plan
