"""Provenance and timing uncertainty: the protocol line on every table and figure a report
writes, the busy mark on a timing from a busy cell, and the median's order-statistic interval
against an independent exact computation and printed tables."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench.report.build import build_report, report_figures
from bench.report.frame import load_runs
from bench.report.timing import BUSY_MARK, BUSY_NOTE, median_interval, median_ranks

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "lra"


def _coverage(n: int, low: int) -> float:
    """P(x(low) <= median < x(n + 1 - low)) from the binomial sum with math.comb."""
    below = sum(math.comb(n, i) for i in range(low)) / 2**n
    return 1.0 - 2.0 * below


@pytest.mark.parametrize("n", range(6, 60))
def test_median_ranks_are_the_narrowest_with_95_percent_coverage(n: int) -> None:
    low, high = median_ranks(n)
    assert high == n + 1 - low
    assert _coverage(n, low) >= 0.95 > _coverage(n, low + 1)


def test_median_ranks_match_the_printed_tables_and_refuse_too_few_samples() -> None:
    # Conover, Practical Nonparametric Statistics, table A3 / the usual sign-test tables
    assert [median_ranks(n) for n in (6, 10, 20, 30)] == [(1, 6), (2, 9), (6, 15), (10, 21)]
    assert median_ranks(5) is None
    interval = median_interval([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 8.0, 7.0, 6.0, 10.0])
    assert (interval.median, interval.low, interval.high) == (5.5, 2.0, 9.0)
    rate = median_interval([1.0, 2.0, 4.0, 5.0, 8.0, 10.0], inverse=True)  # 1 / seconds
    assert (rate.median, rate.low, rate.high) == (1 / 4.5, 1 / 10.0, 1 / 1.0)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The lra fixture with a protocol to state and one busy cell with latency samples."""
    run = tmp_path / "r"
    shutil.copytree(FIXTURE, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["plan"]["overrides"] = ["train.steps=200"]
    manifest["environment"].update(git_sha="0123456789abcdef", git_dirty=True, torch_threads=1)
    manifest["configs"] = {"listops": {"data": {"seed": 7}}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    lines = []
    for line in (run / "records.jsonl").read_text().splitlines():
        raw = json.loads(line)
        raw.setdefault("config", {}).setdefault("data", {})["seed"] = 7  # as the manifest says
        if raw["model"] == "switch" and raw["status"] == "ok":
            raw["metrics"]["latency_train_step_s_samples"] = [0.01 * (i + 1) for i in range(10)]
            raw["metrics"]["latency_train_step_s_median"] = 0.055
            if raw["seed"] == 0:
                raw["metrics"]["machine_busy"] = "load 5.0 on 2 cores"
        lines.append(json.dumps(raw))
    (run / "records.jsonl").write_text("\n".join(lines) + "\n")
    return run


PROTOCOL = (
    "Protocol: run {}: train.steps=200; seeds 0,1; data seed 7; commit 0123456 (dirty); "
    "threads 1 (torch 1); device cpu"
)


def test_every_table_and_figure_states_the_protocol(run_dir: Path, tmp_path: Path) -> None:
    runs = load_runs([run_dir])
    protocol = PROTOCOL.format(runs.manifests[0].run_id)
    report = build_report([run_dir], "md", tmp_path / "out", plots=False)
    tables = [p for p in report.files if p.suffix == ".md"]
    assert len(tables) >= 3
    for path in tables:
        assert path.read_text().rstrip().endswith(protocol), path.name
    figures, _ = report_figures(runs)
    assert figures
    for stem, fig in figures:
        texts = [t.get_text() for t in fig.texts]
        assert any(protocol.replace(" ", "") in t.replace("\n", "").replace(" ", "")
                   for t in texts), stem  # fmt: skip


def test_a_timing_from_a_busy_cell_is_marked_with_its_interval(run_dir: Path) -> None:
    report = build_report([run_dir], "md")
    cost = report.text.split("Cost per model", 1)[1].split("Protocol:", 1)[0]
    (row,) = [line for line in cost.splitlines() if line.startswith("| listops | switch")]
    # 20 pooled samples 10..100 ms twice: median 55 ms, ranks 6 and 15 -> [30, 80] ms
    assert f"55 [30, 80]{BUSY_MARK}" in row
    assert BUSY_NOTE in cost
    (plain,) = [line for line in cost.splitlines() if line.startswith("| listops | full_att")]
    assert BUSY_MARK not in plain
