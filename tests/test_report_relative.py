"""Efficiency ratios, computed once by the report layer (`bench.report.relative`) from records:
each cell's figures over the reference model's record of the same run and cell (task, scale,
seed, sweep variant), checked against the figures divided by hand; why a cell has none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.records import Record
from bench.report.relative import relative_figures
from bench.report.summary import efficiency_summary

ROOT = Path(__file__).resolve().parent.parent


def _cell(model: str, seed: int = 0, variant: str = "", run: str = "r", **fields) -> Record:
    fields.setdefault("status", "ok")
    if fields["status"] != "ok":
        fields.setdefault("reason", "out of memory")
    return Record(
        run_id=run,
        suite="s",
        task="t",
        model=model,
        scale="tiny",
        seed=seed,
        variant=variant,
        **fields,
    )


def _figures(steps: float, cpu: float, memory: float) -> dict:
    return {
        "train_steps_per_s": steps,
        "train_steps_per_cpu_s": cpu,
        "memory_peak_train_bytes": memory,
    }


def test_each_cell_is_divided_by_the_reference_of_its_own_seed_and_variant() -> None:
    records = [
        _cell("fa", 0, metrics=_figures(2.0, 4.0, 100.0)),
        _cell("fa", 1, metrics=_figures(8.0, 16.0, 400.0)),
        _cell("fa", 0, "e=8", metrics=_figures(5.0, 10.0, 50.0)),
        _cell("lin", 0, metrics=_figures(3.0, 5.0, 25.0)),
        _cell("lin", 1, metrics=_figures(3.0, 5.0, 25.0)),
        _cell("lin", 0, "e=8", metrics=_figures(3.0, 5.0, 25.0)),
    ]
    got = [x.ratios for x in relative_figures(records, "fa")]
    assert [x.why for x in relative_figures(records, "fa")] == [""] * 6
    one = {"train_steps_per_s": 1.0, "train_steps_per_cpu_s": 1.0, "memory_peak_train_bytes": 1.0}
    assert got[:3] == [one, one, one]
    assert got[3] == pytest.approx(
        {
            "train_steps_per_s": 3 / 2,
            "train_steps_per_cpu_s": 5 / 4,
            "memory_peak_train_bytes": 0.25,
        }
    )
    assert got[4] == pytest.approx(
        {
            "train_steps_per_s": 3 / 8,
            "train_steps_per_cpu_s": 5 / 16,
            "memory_peak_train_bytes": 25 / 400,
        }
    )
    assert got[5] == pytest.approx(
        {
            "train_steps_per_s": 3 / 5,
            "train_steps_per_cpu_s": 5 / 10,
            "memory_peak_train_bytes": 0.5,
        }
    )


def test_a_cell_without_a_reference_says_why() -> None:
    failed = {"metrics": {}, "measurement_error": "measurements failed: boom"}
    records = [
        _cell("fa", 0, status="oom"),
        _cell("lin", 0, metrics=_figures(3.0, 5.0, 25.0)),
        _cell("lin", 1, metrics=_figures(3.0, 5.0, 25.0)),  # fa has no seed 1
        _cell("perf", 0, status="skipped", reason="data absent"),
        _cell("fa", 0, run="other", **failed),
        _cell("lin", 0, run="other", metrics=_figures(3.0, 5.0, 25.0)),
        _cell("fa", 0, run="third", metrics=_figures(2.0, 0.0, 100.0)),  # a 0 divides nothing
        _cell(
            "lin", 0, run="third", metrics={"train_steps_per_s": 1.0, "train_steps_per_cpu_s": 3}
        ),
        _cell("perf", 0, run="third", **failed),
    ]
    got = relative_figures(records, "fa")
    assert [x.why for x in got] == [
        "this cell is oom",
        "the fa cell is oom",
        "no fa cell of the same task, scale, seed and variant in run r",
        "this cell is skipped",
        "the fa cell's measurements failed",
        "the fa cell's measurements failed",
        "",
        "",
        "this cell's measurements failed",
    ]
    assert all(x.ratios == {} for x in got[:6]) and got[8].ratios == {}
    assert got[7].ratios == {"train_steps_per_s": 0.5}  # only what both carry, nonzero
    assert [(x.run_id, x.cell.model, x.reference) for x in got[4:6]] == [
        ("other", "fa", "fa"),
        ("other", "lin", "fa"),
    ]


def test_a_reference_of_another_run_is_not_used() -> None:
    records = [
        _cell("fa", run="monday", metrics=_figures(2.0, 4.0, 100.0)),
        _cell("lin", run="tuesday", metrics=_figures(3.0, 5.0, 25.0)),
    ]
    (_, lin) = relative_figures(records, "fa")
    assert lin.ratios == {} and lin.why.endswith("in run tuesday")


def test_two_records_of_one_cell_are_refused() -> None:
    records = [_cell("fa", metrics=_figures(2.0, 4.0, 100.0))] * 2
    with pytest.raises(ValueError, match="two records of s/t/fa/tiny/seed0 in run r"):
        relative_figures(records, "fa")


def test_the_summary_prints_the_ratios_and_why_one_is_missing() -> None:
    records = [
        _cell("fa", 0, status="oom"),
        _cell("lin", 0, metrics=_figures(3.0, 5.0, 25e6)),
        _cell("fa", 1, metrics=_figures(2.0, 4.0, 100e6)),
        _cell("lin", 1, metrics=_figures(3.0, 5.0, 25e6)),
    ]
    lines = efficiency_summary(records, "fa").splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:6]]
    assert [r[4:9] for r in rows] == [
        ["n/a", "n/a", "n/a", "n/a", "n/a"],
        ["3.00", "n/a", "n/a", "25.0", "n/a"],
        ["2.00", "1.00", "1.00", "100.0", "1.00"],
        ["3.00", "1.50", "1.25", "25.0", "0.25"],
    ]
    assert rows[1][-1] == "[2]"
    assert "[2] no ratio to fa: the fa cell is oom" in lines


def test_the_ratios_import_no_torch() -> None:
    script = (
        "import sys\n"
        "import bench.report.relative, bench.report.summary\n"
        "assert 'torch' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
