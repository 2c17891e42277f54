"""stderr carries what the user asked for: a tiny run (with --profile) prints none of the
profiler's start/stop chatter, the allocator's unknown-block warning or fvcore's torch.jit.script
deprecation; the filter that removes them still passes every other line through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.measure.quiet import import_fvcore_nn, is_profiler_noise, profiler_noise_filtered

NOISE = ("USDT:", "SyncActivityProfilerHandler", "Memory block of unknown size", "jit.script")
ROOT = Path(__file__).resolve().parent.parent


def test_the_filter_drops_profiler_chatter_and_keeps_a_real_error(capfd) -> None:
    with profiler_noise_filtered():
        os.write(
            2, b"USDT:2026-12-01 10:29:39 1:1 SyncActivityProfilerHandler.cpp:52] profiler_start\n"
        )
        os.write(2, b"[W1201 CPUAllocator.cpp:249] Memory block of unknown size was allocated\n")
        os.write(2, b"RuntimeError: a real failure\n")
        print("python-level warning", file=sys.stderr)
    err = capfd.readouterr().err
    assert "a real failure" in err and "python-level warning" in err
    assert not any(n in err for n in NOISE[:3]), err


def test_noise_patterns_are_narrow() -> None:
    assert is_profiler_noise("USDT:x SyncActivityProfilerHandler.cpp:59] profiler_stop")
    assert not is_profiler_noise("USDT: something else entirely")
    assert not is_profiler_noise("CPUAllocator.cpp: out of memory")


def test_fvcore_imports_without_the_deprecation_warning() -> None:
    code = "from bench.measure.quiet import import_fvcore_nn; import_fvcore_nn()"
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert "jit.script" not in done.stderr, done.stderr
    assert import_fvcore_nn().FlopCountAnalysis


def test_a_tiny_profiled_run_has_none_of_the_noise_on_stderr(tmp_path) -> None:
    # A subprocess: the profiler writes to file descriptor 2 from C++, which only a real
    # process's stderr shows.
    args = ["--suite", "smoke", "--models", "uoe", "--tasks", "majority", "--profile"]
    args += ["--set", "train.steps=10", "--no-progress", "--out", str(tmp_path / "runs")]
    args += ["--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-m", "bench.cli", "run", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    noisy = [line for line in done.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "\n".join(noisy)
    assert list((tmp_path / "runs").glob("*/traces/*/*.pt.trace.json")), "the run profiled"
