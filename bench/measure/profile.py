"""Profiler traces of a few training steps: torch.profiler with a wait/warmup/active schedule.

The trace goes through `tensorboard_trace_handler`, so its directory is a TensorBoard profiler
run (`tensorboard --logdir <run_dir>/traces` with torch-tb-profiler) and the file itself is a
Chrome-trace JSON that chrome://tracing and Perfetto open. Beside it, a text table of the top
operators by self time, and the per-phase summary (`bench.measure.phases`: % of the step in
router, dispatch, expert_gemm, combine, attention, mlp, forward and backward) as text and JSON.
Layer phases appear as the ranges named in `models.layers.ranges`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, schedule, tensorboard_trace_handler

from bench.measure.phases import PhaseSummary, summarize
from bench.measure.quiet import profiler_noise_filtered
from suites.atomic import write_text_atomic


@dataclass(frozen=True)
class ProfileConfig:
    """Steps skipped, then traced but discarded (warm-up), then recorded; rows of the table."""

    wait: int = 1
    warmup: int = 1
    active: int = 2
    table_rows: int = 30

    def __post_init__(self) -> None:
        if self.wait < 0 or self.warmup < 0 or self.active < 1:
            raise ValueError(f"profile config {self}: need wait, warmup >= 0 and active >= 1")


@dataclass(frozen=True)
class ProfileResult:
    """Paths of the Chrome/TensorBoard trace, the operator table and the phase summary (text
    and JSON), and the summary itself."""

    trace: Path
    op_table: Path
    phases: Path
    phases_json: Path
    summary: PhaseSummary


def profile_steps(
    step: Callable[[], Any],
    out_dir: Path,
    worker: str,
    cfg: ProfileConfig,
    device: torch.device | str = "cpu",
) -> ProfileResult:
    """Run `step()` wait + warmup + active times under the profiler; write into `out_dir` the
    trace `<worker>.<ns>.pt.trace.json`, `<worker>.op_table.txt` and the phase summary
    `<worker>.phases.txt` / `.phases.json`."""
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.glob(f"{worker}.*.pt.trace.json"))
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with (
        profiler_noise_filtered(),
        profile(
            activities=activities,
            schedule=schedule(wait=cfg.wait, warmup=cfg.warmup, active=cfg.active, repeat=1),
            on_trace_ready=tensorboard_trace_handler(str(out_dir), worker_name=worker),
            record_shapes=True,
            profile_memory=True,
            with_flops=True,
        ) as prof,
    ):
        for _ in range(cfg.wait + cfg.warmup + cfg.active):
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            prof.step()
    written = sorted(set(out_dir.glob(f"{worker}.*.pt.trace.json")) - before)
    if len(written) != 1:
        raise RuntimeError(f"expected one new trace in {out_dir}, found {len(written)}")
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort_by, row_limit=cfg.table_rows)
    op_table = out_dir / f"{worker}.op_table.txt"
    write_text_atomic(op_table, table + "\n")  # never through a link
    summary = summarize(prof.events())
    phases = out_dir / f"{worker}.phases.txt"
    write_text_atomic(phases, summary.text() + "\n")
    phases_json = out_dir / f"{worker}.phases.json"
    write_text_atomic(phases_json, json.dumps(summary.to_dict(), indent=2, sort_keys=True) + "\n")
    return ProfileResult(written[0], op_table, phases, phases_json, summary)
