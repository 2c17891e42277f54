"""Latency sampling: warm up, then time a callable until BOTH a minimum number of samples and a
minimum total measured time are reached; keep every sample, report the median and p90.

On CUDA each sample is timed with a pair of CUDA events and the device is synchronized before it is
read; on CPU with `time.perf_counter`, and beside it the process CPU time of the call
(`time.process_time`, all threads): on a shared machine other processes stretch the wall time but
much less the CPU time a call consumes, so the CPU figure is the steadier one to compare. The timed
callable is one whole unit of work (a training step or an inference batch), so each sample is one
step's latency in seconds.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class LatencyConfig:
    """warmup: untimed calls first; then sample until >= min_count samples AND their sum is
    >= min_time_s."""

    warmup: int = 2
    min_count: int = 5
    min_time_s: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_count < 1 or self.min_time_s < 0:
            raise ValueError(
                f"latency config {self}: need warmup >= 0, min_count >= 1, min_time_s >= 0"
            )


@dataclass(frozen=True)
class LatencySamples:
    """Raw per-call latencies in seconds, in the order they were taken; on CPU also the process
    CPU seconds of each call (empty on CUDA)."""

    samples_s: tuple[float, ...]
    cpu_samples_s: tuple[float, ...] = ()

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples_s)

    @property
    def p90_s(self) -> float:
        """The 90th percentile, linear interpolation between closest ranks (numpy's default)."""
        return float(np.percentile(self.samples_s, 90.0))

    @property
    def cpu_median_s(self) -> float | None:
        return statistics.median(self.cpu_samples_s) if self.cpu_samples_s else None

    @property
    def total_s(self) -> float:
        return sum(self.samples_s)


def sample_latency(
    fn: Callable[[], Any],
    cfg: LatencyConfig,
    device: torch.device | str = "cpu",
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencySamples:
    """Time `fn()` per cfg; `clock` (seconds) is replaceable so tests can drive the time rule."""
    device = torch.device(device)
    for _ in range(cfg.warmup):
        fn()
    _sync(device)
    samples: list[float] = []
    cpu_samples: list[float] = []
    while len(samples) < cfg.min_count or sum(samples) < cfg.min_time_s:
        if device.type == "cuda":
            samples.append(_time_cuda(fn))
        else:
            wall, cpu = _time_host(fn, clock)
            samples.append(wall)
            cpu_samples.append(cpu)
    return LatencySamples(tuple(samples), tuple(cpu_samples))


def _time_host(fn: Callable[[], Any], clock: Callable[[], float]) -> tuple[float, float]:
    """(wall seconds by `clock`, process CPU seconds) of one call."""
    start, cpu_start = clock(), time.process_time()
    fn()
    return clock() - start, time.process_time() - cpu_start


def _time_cuda(fn: Callable[[], Any]) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0  # ms -> s


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
