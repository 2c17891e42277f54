"""Golden tests: the fixture runs (tests/fixtures/report: two seeds, a missing cell, an oom)
render the tables whose figures were derived by hand from the fixture's numbers.

listops: full_attention 40, 42 -> 41.00 [40.00, 42.00] (the fixture records hold neither
predictions nor the test size: the interval resamples the two seeds only, so it spans them);
switch 44, 44 -> 44.00 [44.00, 44.00] (best, bold: every resample lies above full_attention's);
linformer has no record (n/a). text: full_attention 60, 64 -> 62.00 [60.00, 64.00] (best);
switch oom (OOM); linformer 58, 62 -> 60.00 [58.00, 62.00] (second, underlined). Averages:
full_attention (41 + 62) / 2 = 51.50; the others lack a task, so 44.00* and 60.00*, not ranked
(a column with one ranked value gets no mark).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.records import Record
from bench.report.accuracy_stats import METHOD_NOTE, SEEDS_ONLY_NOTE
from bench.report.csv_data import cells_csv
from bench.report.frame import Runs, cells_frame, load_runs, metrics_frame, seed_summary
from bench.report.table import latex_text, render
from bench.report.tables import (
    FVCORE_NOTE,
    MEASURE_NOTE,
    accuracy_tables,
    cost_tables,
    efficiency_tables,
    report_tables,
)

FIXTURES = Path(__file__).parent / "fixtures" / "report"
NO_TEST_SIZE = (
    "full_attention on listops, full_attention on text, switch on listops, linformer on text"
)

ACCURACY_MD = """\
Test accuracy (%) on lra at scale tiny, mean [95 % interval] over 2 seeds.

| model          |                     listops |                        text |   average |
|----------------|-----------------------------|-----------------------------|-----------|
| full_attention | <u>41.00 [40.00, 42.00]</u> |    **62.00 [60.00, 64.00]** |     51.50 |
| switch         |    **44.00 [44.00, 44.00]** |                         OOM |    44.00* |
| linformer      |                         n/a | <u>60.00 [58.00, 62.00]</u> |    60.00* |

\\* average over the available tasks only; the row lacks a task.

OOM: out of memory at this setting (recorded as an oom cell).""" + "".join(
    f"\n\n{note}" for note in (METHOD_NOTE, SEEDS_ONLY_NOTE.format(NO_TEST_SIZE))
)

ACCURACY_LATEX = (
    r"""\begin{table}[t]
\centering
\small
\caption{Test accuracy (\%) on lra at scale tiny, mean [95 \% interval] over 2 seeds.}
\label{tab:accuracy-lra-tiny}
\begin{tabular}{lrrr}
\toprule
model & listops & text & average \\
\midrule
full\_attention & \underline{41.00 [40.00, 42.00]} & \textbf{62.00 [60.00, 64.00]} & 51.50 \\
switch & \textbf{44.00 [44.00, 44.00]} & OOM & 44.00* \\
linformer & n/a & \underline{60.00 [58.00, 62.00]} & 60.00* \\
\bottomrule
\end{tabular}
\par{\footnotesize * average over the available tasks only; the row lacks a task.}
\par{\footnotesize OOM: out of memory at this setting (recorded as an oom cell).}
"""
    + "".join(
        f"\\par{{\\footnotesize {latex_text(note)}}}\n"
        for note in (METHOD_NOTE, SEEDS_ONLY_NOTE.format(NO_TEST_SIZE))
    )
    + "\\end{table}"
)

# eff fixture: steps/s full_attention 10 and 4, switch 12 and oom, linformer 20 and 16:
# ratios 12/10 = 1.20, 20/10 = 2.00, 16/4 = 4.00.
SPEED_MD = """\
Training steps/s on eff at scale tiny (ratio to full_attention).

| model          |   len256 (L=256) |   len512 (L=512) |
|----------------|------------------|------------------|
| full_attention |       10 (1.00×) |        4 (1.00×) |
| switch         |       12 (1.20×) |              OOM |
| linformer      |       20 (2.00×) |       16 (4.00×) |

OOM: out of memory at this setting (recorded as an oom cell)."""


@pytest.fixture(scope="module")
def lra():
    return load_runs([FIXTURES / "lra"])


def test_tidy_frames_hold_every_cell_and_only_ok_metrics(lra) -> None:
    cells = cells_frame(lra.records)
    assert len(cells) == 10  # 2 tasks x 3 models x 2 seeds, minus linformer/listops
    assert sorted(cells.status.unique()) == ["ok", "oom"]
    assert set(cells.length.dropna()) == {128}, "oom cells get their task's length"
    metrics = metrics_frame(lra.records)
    assert set(metrics.model[metrics.metric == "accuracy"]) == {
        "full_attention",
        "switch",
        "linformer",
    }
    assert "loss_curve" not in set(metrics.metric), "lists stay out of the tidy frame"
    summary = seed_summary(metrics, "accuracy").set_index(["model", "task"])
    assert summary.loc[("full_attention", "text"), "mean"] == pytest.approx(0.62)
    assert summary.loc[("full_attention", "text"), "count"] == 2


def test_accuracy_table_markdown_and_latex(lra) -> None:
    (table,) = accuracy_tables(lra)
    assert render(table, "md") == ACCURACY_MD
    assert render(table, "latex") == ACCURACY_LATEX


def test_efficiency_speed_table_is_relative_to_full_attention() -> None:
    speed, memory = efficiency_tables(load_runs([FIXTURES / "eff"]))
    assert render(speed, "md") == SPEED_MD
    # memory: 30/20 = 1.50, 10/20 = 0.50, 20/80 = 0.25 (MB = 1e6 bytes)
    rows = [[c.text for c in row] for row in memory.rows]
    assert rows[1][1] == "30 (1.50×)" and rows[2][2] == "20 (0.25×)"
    assert memory.headers[1:] == ("len256 (L=256)", "len512 (L=512)")


def test_tables_without_their_metrics_are_omitted_with_a_note() -> None:
    tables, omitted = report_tables(load_runs([FIXTURES / "eff"]))
    assert [t.name for t in tables] == [
        "efficiency_speed_eff_tiny",
        "efficiency_memory_eff_tiny",
        "cost_eff_tiny",
    ]
    assert omitted == ["accuracy table omitted: no ok record carries accuracy"]


def test_cost_table_has_units_and_shows_oom(lra) -> None:
    tables, _ = report_tables(lra)
    cost = next(t for t in tables if t.name == "cost_lra_tiny")
    assert cost.headers == (
        "task",
        "model",
        "length",
        "parameters",
        "active parameters",
        "forward FLOPs per example (MFLOP)",
        "training step latency (median) (ms)",
        "peak training memory (MB)",
    )
    by_key = {(r[0].text, r[1].text): [c.text for c in r[2:]] for r in cost.rows}
    # switch: 3000 params, 1500 active, 3e6 FLOPs = 3 MFLOP (largest prefix keeping full
    # attention's 4e6 >= 1), median 9 ms, 6e6 B = 6 MB
    # the latency: median of the two seeds' 6 pooled samples [order-statistic ranks 1 and 6]
    assert by_key[("listops", "switch")] == ["128", "3,000", "1,500", "3", "9 [8, 10]", "6"]
    assert by_key[("text", "switch")][1:] == ["OOM"] * 5
    assert by_key[("listops", "linformer")][1:] == ["n/a"] * 5


def test_bench_report_writes_every_format(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    argv = ["report", str(FIXTURES / "lra"), "--format", "latex", "--out", str(out)]
    assert main([*argv, "--no-plots"]) == 0  # plots: tests/test_report_plots.py
    protocol = (
        "\\par{\\footnotesize Protocol: run lra: no overrides; seeds 0,1; data seed unknown; "
        "commit unknown (dirty: unknown); threads 1; device cpu}\n"
    )  # bench.report.provenance: the last note of every table the report writes
    expected = ACCURACY_LATEX.replace("\\end{table}", protocol + "\\end{table}")
    assert (out / "accuracy_lra_tiny.tex").read_text() == expected + "\n"
    assert main(["report", str(FIXTURES / "lra"), "--format", "csv", "--out", str(out)]) == 0
    assert (out / "cells.csv").exists()


def test_a_wide_table_is_stacked_in_latex_so_each_part_fits_a_column(lra) -> None:
    cost = next(t for t in report_tables(lra)[0] if t.name == "cost_lra_tiny")
    text = render(cost, "latex")
    assert text.count("\\begin{tabular}") == 2 and text.count("\\toprule") == 2
    specs = re.findall(r"\\begin\{tabular\}\{(\w+)\}", text)
    assert specs == ["llrrrr", "llrr"], "2 label columns + at most 4 values per part"
    assert "\\caption{Cost per model" in text and text.endswith("\\end{table}")


def test_csv_is_data_one_row_per_cell_and_reads_back_numeric(lra) -> None:
    frame = pd.read_csv(io.StringIO(cells_csv(lra)))
    assert len(frame) == 10, "one row per cell"
    numeric = [c for c in frame.columns if c.endswith("]")]
    assert "latency_train_step_s_median [s]" in numeric and "accuracy [fraction]" in numeric
    assert "memory_peak_train_bytes [B]" in numeric and "length [tokens]" in numeric
    for column in numeric:
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    oom = frame[(frame.model == "switch") & (frame.task == "text")]
    assert oom["accuracy [fraction]"].isna().all(), "a missing figure is empty, not n/a or 0"
    row = frame[(frame.model == "full_attention") & (frame.task == "listops") & (frame.seed == 1)]
    assert row["accuracy [fraction]"].item() == 0.42, "the stored number, not a rendering"
    assert row["latency_train_step_s_median [s]"].item() == 0.011


def _cell(model: str, **fields) -> Record:
    return Record("r", "s", "t", model, "tiny", 0, "ok", data={"max_len": 8}, **fields)


def test_a_failed_measurement_and_an_fvcore_disagreement_are_shown() -> None:
    measured = {"accuracy": 0.5, "flops_fwd_per_example": 2e6, "memory_peak_train_bytes": 3e6}
    records = (
        _cell("full_attention", params_total=10, params_active=10, metrics=measured),
        _cell("linformer", params_total=12, params_active=12, metrics={"accuracy": 0.4},
              measurement_error="out of memory while measuring: ..."),
        _cell("performer", params_total=11, params_active=11,
              metrics={**measured, "flops_fvcore_disagreement": "fvcore counts 0.84 x"}),
    )  # fmt: skip
    (cost,) = cost_tables(Runs(records, {"s": ("t",)}))
    rows = {r[1].text: [c.text for c in r[3:]] for r in cost.rows}
    assert rows["linformer"] == ["12", "12", "n/a†", "n/a†"]
    assert rows["full_attention"] == ["10", "10", "2", "3"]
    assert MEASURE_NOTE in cost.notes
    assert FVCORE_NOTE.format("performer on t") in cost.notes


def test_ratios_need_a_reference_model_named_by_the_manifest() -> None:
    speed = {"train_steps_per_s": 2.0}
    records = (_cell("full_attention", metrics=speed), _cell("linformer", metrics=speed))
    (unnamed, *_) = efficiency_tables(Runs(records, {"s": ("t",)}))
    assert "ratio" not in unnamed.title and "(1.00×)" not in render(unnamed, "md")
    assert unnamed.notes == ("the runs' manifests name no reference model: ratios are left out.",)
    (named, *_) = efficiency_tables(Runs(records, {"s": ("t",)}, {"s": "linformer"}))
    assert named.title.endswith("(ratio to linformer)") and "2 (1.00×)" in render(named, "md")


def test_latex_escapes_every_special_character_once() -> None:
    text = r"a_b 50% & #1 $x$ {y} ~z ^w \cmd ±"
    assert latex_text(text) == (
        r"a\_b 50\% \& \#1 \$x\$ \{y\} \textasciitilde{}z \textasciicircum{}w "
        r"\textbackslash{}cmd $\pm$"
    )


def test_a_title_keeps_the_case_of_its_unit() -> None:
    records = (_cell("full_attention", metrics={"memory_peak_train_bytes": 3e6}),)
    (memory,) = efficiency_tables(Runs(records, {"s": ("t",)}, {"s": "full_attention"}))
    assert memory.title.startswith("Peak training memory (MB) on s")
