"""What the manifest says of the machine and the software a run used: versions, device, CPU,
threads, and the git state of the source."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

# Packages whose version can change a figure: FLOP counts (fvcore), GPU kernels (triton).
VERSIONED_PACKAGES = ("fvcore", "triton", "numpy")


def environment() -> dict[str, Any]:
    """Versions, device and CPU facts recorded in every manifest."""
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": cuda,
        "gpu_name": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": cpu_name(),
        # The vector ISA torch's CPU kernels use (AVX2, AVX512, ...): float sums, and so losses,
        # differ between ISAs even on CPUs of the same name.
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "packages": {name: _version(name) for name in VERSIONED_PACKAGES},
        "platform": platform.platform(),
        "hostname": platform.node(),
        **_git_state(),
    }


def _version(package: str) -> str | None:
    """The installed version of `package`, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_state() -> dict[str, Any]:
    """The git commit of the bench source and whether the tree had uncommitted changes."""
    source = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"git_sha": sha, "git_dirty": None if status is None else bool(status)}
