"""`bench report --format csv`: the records as data, not a rendering of a table.

One row per cell (the latest record of each, a task's config groups labelled as in the
tables), identity and status first, then every scalar metric the records carry as a plain
number in the SI unit it is stored in, the unit from the metric catalog in the column header
(`latency_train_step_s_median [s]`, `memory_peak_train_bytes [B]`, `accuracy [fraction]`). A
missing figure is an empty field, never `n/a` or 0; no marks, ratios or rounding: pandas reads
every metric column back as a float.
"""

from __future__ import annotations

import pandas as pd

from bench.metric_catalog import MetricCatalog
from bench.report.frame import Runs, cells_frame, metrics_frame

IDENTITY = ["run_id", "suite", "scale", "task", "model", "seed"]


def header(name: str, catalog: MetricCatalog) -> str:
    """`name [unit]`, the unit as the catalog declares it (none for a figure it lacks)."""
    metric = catalog.find(name)
    return f"{name} [{metric.unit}]" if metric is not None and metric.unit else name


def cells_data(runs: Runs) -> pd.DataFrame:
    """One row per cell: identity, length, status, reason, then one column per scalar metric."""
    cells = cells_frame(runs.records)
    metrics = metrics_frame(runs.records)
    names = runs.catalog.order(metrics.metric)
    wide = metrics.pivot_table(
        index=["suite", "scale", "task", "model", "seed"],
        columns="metric",
        values="value",
        aggfunc="first",
    )
    wide = wide.reindex(columns=names).reset_index()
    frame = cells.merge(wide, on=["suite", "scale", "task", "model", "seed"], how="left")
    frame = frame[[*IDENTITY, "length", "status", "reason", "measurement_error", *names]]
    units = {n: header(n, runs.catalog) for n in names}
    return frame.rename(columns={"length": "length [tokens]", **units})


def cells_csv(runs: Runs) -> str:
    return cells_data(runs).to_csv(index=False, lineterminator="\n").rstrip("\n")
