"""The history read and analysed once for `bench history show` and the dashboard: points per
(series, commit) in commit order, the detected steps, each machine's latest commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.history.order import CommitOrder, order_commits
from bench.history.steps import SERIES_KEY, Step, commit_points, series_steps
from bench.history.store import read_history
from bench.metric_catalog import MetricCatalog
from models.errors import InputError


@dataclass(frozen=True)
class History:
    """points: `steps.commit_points` of the selected figures; steps: every detected step;
    order: the commits, oldest first, and how they were ordered; latest: machine key -> its
    latest commit; dates: sha -> its commit date (or the run date when unknown); runs: one row
    per stored run."""

    points: pd.DataFrame
    steps: tuple[Step, ...]
    order: CommitOrder
    catalog: MetricCatalog
    latest: Mapping[str, str]
    dates: Mapping[str, str]
    runs: pd.DataFrame

    def regressions(self, current_only: bool) -> list[Step]:
        return [
            s for s in self.steps if s.verdict == "regression" and (s.current or not current_only)
        ]


def analyse(
    history_dir: Path,
    repo: Path | None,
    figure: str | None = None,
    model: str | None = None,
    task: str | None = None,
) -> History:
    frame, catalog = read_history(history_dir)
    runs = frame.drop_duplicates("run_id")[["run_id", "git_sha", "git_dirty", "commit_date",
                                            "run_date", "machine_key"]]  # fmt: skip
    order = order_commits(runs, repo)
    position = order.position()
    for column, wanted in (("figure", figure), ("model", model), ("task", task)):
        if wanted is None:
            continue
        if wanted not in set(frame[column]):
            known = ", ".join(sorted(set(frame[column])))
            raise InputError(f"no {column} {wanted!r} in the history; it holds: {known}")
        frame = frame[frame[column] == wanted]
    points = commit_points(frame, position)
    latest = {
        machine: max(group["git_sha"], key=position.__getitem__)
        for machine, group in runs.groupby("machine_key")
    }
    steps: list[Step] = []
    for key, series in points.groupby(list(SERIES_KEY), sort=False, dropna=False):
        metric = catalog.get(key[-1])
        if metric.kind == "timing" and not key[-2]:
            series = series[~series["busy"]]  # a busy run's absolute timing moves with the load
        if series.empty:
            continue
        commits = list(series["git_sha"])
        steps += series_steps(key, commits, list(series["value"]), metric, latest[key[0]])
    dates = {
        sha: (group["commit_date"].dropna().iloc[0] if group["commit_date"].notna().any()
              else group["run_date"].min())
        for sha, group in runs.groupby("git_sha")
    }  # fmt: skip
    return History(points, tuple(steps), order, catalog, latest, dates, runs)


def series_label(key: tuple, with_machine: bool = False) -> str:
    """'smoke/tiny majority linformer seed 0' (+ the variant, the reference model of a ratio,
    the config and the machine when set)."""
    machine, suite, scale, config, task, model, seed, variant, relative_to, _ = key
    text = f"{suite}/{scale} {task} {model}"
    text += f"[{variant}]" if variant else ""
    text += f" / {relative_to}" if relative_to else ""
    text += f" seed {seed}"
    text += f" ({config})" if config else ""
    return text + (f" on {machine}" if with_machine else "")
