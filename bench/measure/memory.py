"""Peak memory of one phase (a training step, an inference batch), in bytes, with its method.

CUDA: `reset_peak_memory_stats`, run the phase, read `max_memory_allocated` and
`max_memory_reserved` (they include the tensors already resident, e.g. weights).
CPU: torch 2.13 has no CPU allocator statistics (`torch.cpu` exposes none), so the phase runs
under `torch.profiler` with `profile_memory=True`; the profiler logs every allocation and free
made during the phase, and the peak of their running sum is added to the bytes of the tensors
the caller says are resident before the phase (parameters, buffers, optimizer state). Frees of
tensors allocated before the phase are invisible to the profiler, so the caller must make sure
the phase frees none it counted (e.g. set gradients to None before the phase, not inside it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from bench.measure.quiet import profiler_noise_filtered

CUDA_METHOD = "cuda: torch.cuda.max_memory_allocated after reset_peak_memory_stats"
CPU_METHOD = (
    "cpu: resident tensor bytes (parameters, buffers, optimizer state) + peak running sum of "
    "the torch.profiler memory events of the phase"
)


@dataclass(frozen=True)
class MemoryPeak:
    """peak_bytes: peak allocated; reserved_bytes: CUDA allocator reservation (None on CPU)."""

    peak_bytes: int
    method: str
    reserved_bytes: int | None = None


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of distinct tensor storages (a tied or viewed weight is counted once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def resident_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Parameters, buffers, existing gradients and optimizer state tensors of `model`."""
    tensors: list[torch.Tensor] = [*model.parameters(), *model.buffers()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    if optimizer is not None:
        for state in optimizer.state.values():
            tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return tensor_bytes(tensors)


def measure_peak(
    fn: Callable[[], Any], device: torch.device | str, *, resident: int = 0
) -> MemoryPeak:
    """Run `fn()` once and return its peak memory. `resident`: bytes already allocated before
    the phase (CPU only; on CUDA the allocator knows them)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return MemoryPeak(
            int(torch.cuda.max_memory_allocated(device)),
            CUDA_METHOD,
            int(torch.cuda.max_memory_reserved(device)),
        )
    if device.type != "cpu":
        raise ValueError(f"memory measurement supports cpu and cuda, not {device.type}")
    with (
        profiler_noise_filtered(),
        profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    return MemoryPeak(resident + peak_of_events(events), CPU_METHOD)


def peak_of_events(events: list[dict[str, Any]]) -> int:
    """Peak of the running sum of CPU allocation (+) and free (-) bytes, in event order; 0 if
    nothing was allocated."""
    memory = [
        e["args"]
        for e in events
        if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == 0
    ]
    memory.sort(key=lambda args: args["Ev Idx"])
    running = peak = 0
    for args in memory:
        running += int(args["Bytes"])
        peak = max(peak, running)
    return peak
