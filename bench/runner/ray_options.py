"""The Ray launcher's options (`bench run --launcher ray`, checked as they are built) and the one
way to import ray: with the loopback switch set first for a local instance, and an error naming
the extra to install when ray is absent. Light: imports neither torch nor ray at import."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from models.errors import InputError

# Set before ray is first imported, a local instance binds every server to 127.0.0.1 instead of
# the machine's routable address (ray's own switch; it is read at import).
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
INSTALL_HINT = "pip install -e '.[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """address: a cluster to join (None: start a local instance); local_cpus / local_gpus: the
    local instance's resources (default: this machine's); the rest as `bench run --help`."""

    address: str | None = None
    device: str = "cpu"
    cpus_per_cell: float | None = None
    gpus_per_cell: float | None = None
    max_retries: int = 2
    share_device: bool = False
    show_progress: bool = True
    local_cpus: int | None = None
    local_gpus: int | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise InputError("--max-retries must be >= 0")
        for flag, value in (
            ("--cpus-per-cell", self.cpus_per_cell),
            ("--gpus-per-cell", self.gpus_per_cell),
        ):
            if value is not None and value <= 0:
                raise InputError(f"{flag} must be > 0")
        if not self.on_gpu and self.gpus_per_cell:
            raise InputError("--gpus-per-cell needs --device cuda")

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def exclusive_cpu_nodes(self) -> bool:
        """CPU cells one per node, pinned by the driver (the timing-honesty default)."""
        return not self.on_gpu and not self.share_device

    @property
    def device_shared(self) -> bool:
        if self.on_gpu:
            return self.share_device or (self.gpus_per_cell or 1.0) < 1.0
        return self.share_device


def import_ray(local: bool) -> Any:
    """`import ray`, with the loopback switch set first for a local instance; a clear error
    naming the extra to install when ray is absent."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise InputError(f"--launcher ray needs ray: {INSTALL_HINT}") from None
    return ray
