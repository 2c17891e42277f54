"""Timing gates on a loaded runner (simulated from the fixture run: every NEW record marked
`machine_busy` at load 4 on 2 cores, its wall times stretched unevenly by the load and its CPU
times a little): an unchanged rerun passes, and a 2x slowdown of ONE model, on both clocks, is
caught by the ratio of its process CPU time to full_attention's in the same run, while the
absolute timings and the wall-time ratios are only counted as busy."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bench.cli import main
from bench.records import RecordStore, read_records

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "lra"
WALL = ("latency_train_step_s_median", "latency_train_step_s_samples")
CPU = ("cpu_time_train_step_s_median", "cpu_time_train_step_s_samples")
BUSY = {"machine_busy": "load average 4.0 > 2 cores: its timings are noise"}


def _scaled(value, factor: float):
    return [v * factor for v in value] if isinstance(value, list) else value * factor


def _copy(tmp_path: Path, name: str, wall: dict, cpu: dict, busy: bool) -> Path:
    """The fixture run with CPU times (0.9 x the wall times) and, per model, its wall and CPU
    timings multiplied by `wall[model]` and `cpu[model]`."""
    out = tmp_path / name
    shutil.copytree(FIXTURE, out)
    (out / "records.jsonl").unlink()
    store = RecordStore(out)
    for r in read_records(FIXTURE):
        if r.status == "ok":
            m = dict(r.metrics)
            m[CPU[0]], m[CPU[1]] = _scaled(m[WALL[0]], 0.9), _scaled(m[WALL[1]], 0.9)
            for key in WALL:
                m[key] = _scaled(m[key], wall.get(r.model, 1.0))
            for key in CPU:
                m[key] = _scaled(m[key], cpu.get(r.model, 1.0))
            if busy:
                m |= {**BUSY, "load_avg_1m_before": 4.0, "load_avg_1m_after": 4.0}
            r = dataclasses.replace(r, metrics=m)
        store.append(r)
    return out


def _compare(capsys, base: Path, new: Path) -> tuple[int, str]:
    code = main(["compare", str(base), str(new)])
    return code, capsys.readouterr().out


def test_a_2x_slowdown_of_one_model_is_caught_on_a_loaded_runner(tmp_path, capsys) -> None:
    base = _copy(tmp_path, "base", {}, {}, busy=False)
    # load 4 on 2 cores: wall times 1.8-2.5x longer, unevenly; CPU times 1.05-1.2x
    load_wall = {"full_attention": 1.8, "switch": 2.5, "linformer": 2.2}
    load_cpu = {"full_attention": 1.05, "switch": 1.2, "linformer": 1.1}
    rerun = _copy(tmp_path, "rerun", load_wall, load_cpu, busy=True)
    code, out = _compare(capsys, base, rerun)
    assert code == 0, out
    assert "not gated: " in out and "timing(s) of cells on a busy machine" in out

    slow_wall = {**load_wall, "switch": load_wall["switch"] * 2}
    slow_cpu = {**load_cpu, "switch": load_cpu["switch"] * 2}
    slower = _copy(tmp_path, "slower", slow_wall, slow_cpu, busy=True)
    code, out = _compare(capsys, base, slower)
    assert code == 1, out
    regressions = out.split("REGRESSIONS (2 figure(s)):\n")[1].splitlines()
    assert (
        regressions[0] == "  time ÷ full_attention  slower: 2 figure(s) in 2 cell(s)  x2.3 in time"
    )
    # switch / full_attention CPU time: 0.818 in BASE, 0.818 x (1.2 x 2) / 1.05 in NEW; only
    # switch's cells regressed, and only by the load-steady ratio
    assert regressions[1:3] == [
        f"      lra/listops/switch/tiny/seed{s}: training step CPU time (median) ÷ "
        "full_attention's 0.818 -> 1.87 (x2.3)"
        for s in (0, 1)
    ], out
