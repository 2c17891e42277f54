"""What a run covers (`RunPlan`: suite, scale, models, tasks, seeds, `--set` overrides, sweep,
where data lives, device, threads), as the command line gives it and the manifest stores it, so
that `--resume` rebuilds exactly the same run. `bench.runner.plan` checks it against the
registries and resolves it. Imports nothing heavy: reports read it from manifests without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.cell_id import CellId

# One intra-op thread: on a shared machine torch's default (one per core) fights the other
# work for the cores and timings swing 3-6x (issue 16); one thread is steady and repeatable.
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class RunPlan:
    """What a run covers; everything needed to redo or resume it (stored in the manifest)."""

    suite: str
    scale: str
    models: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()  # raw `--set` strings
    data_dir: str | None = None
    cache_dir: str = ""
    device: str = "cpu"
    profile: bool = False  # write a profiler trace of a few training steps per ok cell
    task_data_dirs: tuple[tuple[str, str], ...] = ()  # (task, directory): beats data_dir
    threads: int | None = DEFAULT_THREADS  # torch intra-op threads; None: torch's default
    sweep: tuple[str, ...] = ()  # raw `--sweep KEY=V1,V2` strings (bench.runner.sweep)
    # grouped-GEMM paths: "autotune" (measured per shape, the CLI's default) or "rule" (fixed)
    kernels: str = "rule"

    def data_dir_for(self, task: str) -> str | None:
        """The task's own `--data-dir TASK=PATH`, else the plain `--data-dir`, else None."""
        return dict(self.task_data_dirs).get(task, self.data_dir)

    def cells(self) -> list[CellId]:
        """Task-major order, so each task's data is loaded once; then variant, model, seed."""
        from bench.runner.sweep import variants  # parses sweep values: config-side imports

        return [
            CellId(self.suite, task, model, self.scale, seed, variant.key)
            for task in self.tasks
            for variant in variants(self.sweep)
            for model in self.models
            for seed in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the manifest (`from_dict` reads it back)."""
        return {
            **self.__dict__,
            "models": list(self.models),
            "tasks": list(self.tasks),
            "seeds": list(self.seeds),
            "overrides": list(self.overrides),
            "task_data_dirs": dict(self.task_data_dirs),
            "sweep": list(self.sweep),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunPlan:
        """The plan from its stored form (older manifests lack the later fields); KeyError or
        TypeError when a field it needs is missing or of the wrong kind."""
        return cls(
            suite=raw["suite"],
            scale=raw["scale"],
            models=tuple(raw["models"]),
            tasks=tuple(raw["tasks"]),
            seeds=tuple(raw["seeds"]),
            overrides=tuple(raw["overrides"]),
            data_dir=raw["data_dir"],
            cache_dir=raw["cache_dir"],
            device=raw["device"],
            profile=raw.get("profile", False),
            task_data_dirs=tuple(raw.get("task_data_dirs", {}).items()),
            threads=raw.get("threads"),  # a run from before --threads used torch's default
            sweep=tuple(raw.get("sweep", ())),
            kernels=raw.get("kernels", "rule"),  # a run from before autotune took the rule
        )
