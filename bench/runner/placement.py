"""Where a cell ran, as its record's `placement` says: the launcher, the host, the device and its
name (GPU or CPU model), whether the device was shared, and whatever a launcher adds (Ray: node,
PID, GPU index, torch threads)."""

from __future__ import annotations

import dataclasses
import platform
from typing import Any

import torch

from bench.environment import cpu_name
from bench.records import Record


def with_placement(record: Record, launcher: str, device: str, **where: Any) -> Record:
    """`record` with where it ran: launcher, host, device name (and whatever `where` adds)."""
    placement = {
        "launcher": launcher,
        "hostname": platform.node(),
        "device": device,
        "device_name": device_name(device),
        "device_shared": False,
        **where,
    }
    return dataclasses.replace(record, placement=placement)


def device_name(device: str) -> str:
    """The GPU's name for a CUDA device, else the CPU's model name."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_name()
