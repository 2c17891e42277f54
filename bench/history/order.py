"""The order of the history's commits: git's topological order (parents before children, then
commit date) when a repository holds every commit, else the commit dates recorded when the runs
were added, else the run dates. `CommitOrder.method` says which, and every output names it."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class CommitOrder:
    """shas: the commits, oldest first; method: how they were put in that order."""

    shas: tuple[str, ...]
    method: str

    def position(self) -> dict[str, int]:
        return {sha: i for i, sha in enumerate(self.shas)}


def order_commits(runs: pd.DataFrame, repo: Path | None) -> CommitOrder:
    """`runs`: one row per stored run (git_sha, commit_date, run_date)."""
    shas = list(dict.fromkeys(runs["git_sha"]))
    topo = _topological(shas, repo)
    if topo is not None:
        return CommitOrder(tuple(topo), f"git topological order ({repo})")
    by_sha = runs.groupby("git_sha").agg(
        commit_date=("commit_date", "first"), run=("run_date", "min")
    )
    if by_sha["commit_date"].notna().all():
        ordered = by_sha.sort_values(["commit_date", "run"]).index
        why = "no repository" if repo is None else f"{repo} lacks some of them"
        return CommitOrder(tuple(ordered), f"commit date ({why})")
    ordered = by_sha.sort_values("run").index
    return CommitOrder(tuple(ordered), "run date (some commits' dates are unknown)")


def _topological(shas: Sequence[str], repo: Path | None) -> list[str] | None:
    """`shas` in `git rev-list --topo-order` order (oldest first); None when there is no
    repository or it lacks one of them."""
    if repo is None or not shas:
        return None
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--topo-order", "--reverse", *shas],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    wanted = set(shas)
    ordered = [sha for sha in done.stdout.split() if sha in wanted]
    return ordered if len(ordered) == len(wanted) else None


def default_repo(start: Path) -> Path | None:
    """The git repository holding `start` (None when it is in none)."""
    done = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    return Path(done.stdout.strip()) if done.returncode == 0 else None
