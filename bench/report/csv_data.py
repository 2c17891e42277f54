"""`bench report --format csv`: the records as data, not a rendering of a table.

One row per cell (the latest record of each, task variants labelled as in the tables), identity
and status first, then every scalar metric the records carry as a plain number in the SI unit it
is stored in, the unit in the column header (`latency_train_step_s_median [s]`,
`memory_peak_train_bytes [B]`, `accuracy [fraction]`). A missing figure is an empty field, never
`n/a` or 0; no marks, ratios or rounding: pandas reads every metric column back as a float.
"""

from __future__ import annotations

import re

import pandas as pd

from bench.report.frame import Runs, cells_frame, metrics_frame

IDENTITY = ["run_id", "suite", "scale", "task", "model", "seed"]
# (pattern on the metric name, unit), first match wins.
UNITS = (
    (r"params_.+", "count"),
    (r"flops_.+", "FLOP"),
    (r"(.+_)?accuracy", "fraction"),
    (r".*loss.*", "nats"),
    (r".+_per_cpu_s", "1/CPU s"),
    (r".+_per_s", "1/s"),
    (r".+_bytes", "B"),
    (r".+_s(_median|_p90)?", "s"),
    (r"best_step", "step"),
)


def unit(metric: str) -> str:
    """The unit of a metric from its name ('' when the name states none)."""
    return next((u for pattern, u in UNITS if re.fullmatch(pattern, metric)), "")


def header(metric: str) -> str:
    u = unit(metric)
    return f"{metric} [{u}]" if u else metric


def cells_data(runs: Runs) -> pd.DataFrame:
    """One row per cell: identity, length, status, reason, then one column per scalar metric."""
    cells = cells_frame(runs.records)
    metrics = metrics_frame(runs.records)
    names = list(dict.fromkeys(metrics.metric))
    wide = metrics.pivot_table(
        index=["suite", "scale", "task", "model", "seed"],
        columns="metric",
        values="value",
        aggfunc="first",
    )
    wide = wide.reindex(columns=names).reset_index()
    frame = cells.merge(wide, on=["suite", "scale", "task", "model", "seed"], how="left")
    frame = frame[[*IDENTITY, "length", "status", "reason", "measurement_error", *names]]
    return frame.rename(columns={"length": "length [tokens]", **{n: header(n) for n in names}})


def cells_csv(runs: Runs) -> str:
    return cells_data(runs).to_csv(index=False, lineterminator="\n").rstrip("\n")
