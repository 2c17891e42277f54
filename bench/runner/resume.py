"""The plan of a run directory to resume, read from its manifest; a corrupt or incomplete
manifest is refused with what is wrong and how to recover (the finished records stay valid)."""

from __future__ import annotations

from pathlib import Path

from bench.records import MANIFEST_FILE, read_manifest, recovery_hint
from bench.runner.plan import RunPlan, plan_from_manifest


def read_plan(run_dir: Path) -> RunPlan:
    """The stored plan of `run_dir`; ValueError naming the file and the recovery if unreadable."""
    manifest = read_manifest(run_dir)
    try:
        return plan_from_manifest(manifest)
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing field {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise ValueError(
            f"{Path(run_dir) / MANIFEST_FILE} is corrupt ({detail} in its plan). "
            + recovery_hint(run_dir)
        ) from None
