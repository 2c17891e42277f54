"""The Ray launcher's options (`bench run --launcher ray`, checked as they are built), the one
way to import ray (with the loopback switch set first for a local instance, and an error naming
the extra to install when ray is absent), and the wait for a cluster's address to answer, with
a deadline: `ray.init(address=...)` waits for an address where nothing listens with no end, in
native code that a Ctrl-C does not interrupt. Light: imports neither torch nor ray at import."""

from __future__ import annotations

import os
import socket
import sys
import time
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


CONNECT_TIMEOUT_ENV = "BENCH_RAY_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 60.0


def connect_timeout_s() -> float:
    """How long to wait for `--ray-address` to answer: $BENCH_RAY_CONNECT_TIMEOUT_S, else 60 s."""
    raw = os.environ.get(CONNECT_TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_CONNECT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"{CONNECT_TIMEOUT_ENV}={raw!r}: expected a number of seconds > 0")
    return value


def wait_for_address(address: str, timeout_s: float, say=print) -> None:
    """Return once something accepts a TCP connection at `address` (HOST:PORT, or
    ray://HOST:PORT); InputError naming the address and the last error after `timeout_s`.
    Said once through `say` (to stderr by default) when the first try fails. `auto` and
    `local` are ray's own lookups (they fail fast): not waited for. Interruptible: only short
    Python calls, so a stop signal's handler runs within a second."""
    if address in ("auto", "local"):
        return
    host, sep, port_text = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise InputError(
            f"--ray-address {address}: expected HOST:PORT (ray start --head prints it)"
        )
    host = host.strip("[]")
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        left = deadline - time.monotonic()
        try:
            socket.create_connection(
                (host, int(port_text)), timeout=max(0.05, min(1.0, left))
            ).close()
            return
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
        left = deadline - time.monotonic()
        if left <= 0:
            raise InputError(
                f"--ray-address {address}: no Ray cluster answered within {timeout_s:g} s "
                f"({reason}); start one with `ray start --head` and pass the address it prints, "
                f"or wait longer with {CONNECT_TIMEOUT_ENV}=SECONDS"
            )
        if not said:
            say(
                f"waiting for the Ray cluster at {address} ({reason}); giving up after "
                f"{timeout_s:g} s ({CONNECT_TIMEOUT_ENV})"
            )
            said = True
        time.sleep(min(0.25, left))
