"""What a run asks of its launcher, built once from `bench run`'s command line (`bench.commands`)
so that no argparse Namespace reaches the runner: which launcher, and the Ray launcher's
options. Ray options given without `--launcher ray` are refused, not ignored.
`bench.runner.launch.make_launcher` turns these options into a launcher."""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import InputError

LAUNCHERS = ("in_process", "ray")


@dataclass(frozen=True)
class LaunchOptions:
    """launcher: `in_process` or `ray`; workers: the in-process launcher's training processes
    (`bench.runner.parallel`); the rest are the Ray launcher's, as `bench run --help` says
    (show_progress: the Ray launcher's bar over cells; the in-process launcher draws the
    per-step bars `bench.commands` hands the driver)."""

    launcher: str = "in_process"
    workers: int = 1
    ray_address: str | None = None
    cpus_per_cell: float | None = None
    gpus_per_cell: float | None = None
    max_retries: int | None = None  # None: the Ray launcher's default
    share_device: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise InputError(f"--launcher {self.launcher!r}: use one of {', '.join(LAUNCHERS)}")
        if self.workers < 1:
            raise InputError(f"--workers {self.workers}: give 1 or more")
        if self.launcher == "ray" and self.workers != 1:
            raise InputError("--workers is the in-process launcher's; Ray places cells itself")
        if self.launcher != "ray":
            given = [
                flag
                for flag, value in (
                    ("--ray-address", self.ray_address),
                    ("--cpus-per-cell", self.cpus_per_cell),
                    ("--gpus-per-cell", self.gpus_per_cell),
                    ("--share-device", self.share_device or None),
                    ("--max-retries", self.max_retries),
                )
                if value is not None
            ]
            if given:
                raise InputError(f"{', '.join(given)} need --launcher ray")
