"""The history (bench/history): add and show round trip against the records, idempotent adds,
series split by machine (a slower new runner is no regression), and change points: a 2x step in
a noisy timing and in an exact FLOP figure found at the planted commit with the right verdict and
commit range, none in pure noise; the detector alone on the planted series of its evaluation."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from history_fixtures import COUNTED, TIMED, make_repo, make_run

from bench.cli import main
from bench.history.analysis import analyse
from bench.history.dashboard import commit_url_template
from bench.history.order import order_commits
from bench.history.steps import detect
from bench.history.store import add_run, read_history
from bench.metric_catalog import HARNESS
from bench.records import read_records
from models.errors import InputError

COMMITS = 12
PLANTED = 6  # the first commit of the new level (0-based)


@pytest.fixture()
def repo(tmp_path: Path) -> list[str]:
    return make_repo(tmp_path / "repo", COMMITS)


def _history(tmp_path: Path, shas: list[str], **plant) -> Path:
    """Add one run per commit, newest first (the order must come from git, not from adding)."""
    history, runs = tmp_path / "history", tmp_path / "runs"
    rng = np.random.default_rng(7)
    made = []
    for i, sha in enumerate(shas):
        stepped = {k: v for k, v in plant.items() if i >= PLANTED}
        made.append(make_run(runs, f"run{i:02d}", sha, rng, **stepped))
    for run in reversed(made):
        add_run(history, run, tmp_path / "repo")
    return history


def test_add_and_show_round_trip_the_records_figures(tmp_path, repo, capsys) -> None:
    run = make_run(tmp_path / "runs", "one", repo[3], np.random.default_rng(0))
    history = tmp_path / "history"
    assert (
        main(
            [
                "history",
                "add",
                str(run),
                "--history",
                str(history),
                "--repo",
                str(tmp_path / "repo"),
            ]
        )
        == 0
    )
    frame, _ = read_history(history)
    (record,) = [r for r in read_records(run) if (r.task, r.model, r.seed) == (*TIMED, 0)]
    cell = frame[(frame["task"] == TIMED[0]) & (frame["seed"] == 0)]
    rows = cell[(cell["model"] == TIMED[1]) & (cell["relative_to"] == "")]
    by_figure = rows.set_index("figure")
    step = by_figure.loc["latency_train_step_s_median"]
    samples = record.metrics["latency_train_step_s_samples"]
    assert step["value"] == record.metrics["latency_train_step_s_median"]
    assert (step["n"], step["low"], step["high"]) == (len(samples), min(samples), max(samples))
    assert by_figure.loc["params_total", "value"] == record.params_total
    assert by_figure.loc["accuracy", "value"] == record.metrics["accuracy"]
    assert "latency_train_step_s_samples" not in by_figure.index, "only scalar figures"
    (ref,) = [
        r for r in read_records(run) if (r.task, r.model, r.seed) == (TIMED[0], "full_attention", 0)
    ]
    ratios = cell[(cell["model"] == TIMED[1]) & (cell["relative_to"] == "full_attention")]
    ratio = ratios.set_index("figure").loc["latency_train_step_s_median"]
    expected = step["value"] / ref.metrics["latency_train_step_s_median"]
    assert ratio["value"] == pytest.approx(expected, rel=1e-12)
    assert ratio["high"] == pytest.approx(max(samples) / ref.metrics["latency_train_step_s_median"])
    assert set(ratios["figure"]) <= {m.name for m in HARNESS if m.kind == "timing"}
    assert cell[cell["model"] == "full_attention"]["relative_to"].eq("").all(), "not to itself"
    assert set(frame["git_sha"]) == {repo[3]} and frame["commit_date"].iloc[0].startswith(
        "2026-01-04"
    )
    assert set(frame["machine_key"]) == {"Fixture-CPU_AVX2_torch2.13.0+cpu_t1"}
    oom = frame[(frame["task"] == "text") & (frame["model"] == "switch")]
    assert oom.empty, "a failed cell has no figures"
    capsys.readouterr()
    args = ["history", "show", "--history", str(history), "--repo", str(tmp_path / "repo")]
    assert main([*args, "--figure", "latency_train_step_s_median", "--model", TIMED[1]]) == 0
    out = capsys.readouterr().out
    assert "ordered by git topological order" in out
    ms = f"{1000 * record.metrics['latency_train_step_s_median']:.3g}"
    assert f"{TIMED[0]} {TIMED[1]} seed 0" in out and ms in out, out
    assert "regressions: none" in out
    assert main([*args, "--model", "nope"]) == 2
    assert "no model 'nope' in the history" in capsys.readouterr().err


def test_adding_a_run_twice_is_a_no_op(tmp_path, repo, capsys) -> None:
    run = make_run(tmp_path / "runs", "one", repo[0], np.random.default_rng(0))
    history = tmp_path / "history"
    path, what = add_run(history, run, None)
    before = path.read_bytes()
    assert what == "added"
    assert add_run(history, run, None) == (path, "unchanged")
    assert path.read_bytes() == before
    assert main(["history", "add", str(run), "--history", str(history)]) == 0
    assert capsys.readouterr().out.startswith("unchanged:")
    assert len(list(history.rglob("*.jsonl"))) == 1
    assert not list(history.rglob("*.tmp")), "no temporary file left behind"
    frame, _ = read_history(history)
    assert frame.duplicated(["run_id", "task", "model", "seed", "relative_to", "figure"]).sum() == 0


def test_a_dirty_run_needs_allow_dirty(tmp_path, repo, capsys) -> None:
    run = make_run(tmp_path / "runs", "dirty", repo[0], np.random.default_rng(0), dirty=True)
    with pytest.raises(InputError, match="--allow-dirty"):
        add_run(tmp_path / "history", run, None)
    assert main(["history", "add", str(run), "--history", str(tmp_path / "h")]) == 2
    assert (
        main(["history", "add", str(run), "--history", str(tmp_path / "h"), "--allow-dirty"]) == 0
    )


def test_planted_steps_are_found_at_their_commit_and_nowhere_else(tmp_path, repo) -> None:
    history = _history(tmp_path, repo, timing_factor=2.0, flops_factor=2.0)
    analysed = analyse(history, tmp_path / "repo")
    assert analysed.order.shas == tuple(repo)
    assert analysed.order.method.startswith("git topological order")
    found = {_key(s): s for s in analysed.steps}
    expected = {
        (*TIMED, seed, relative_to, figure)
        for seed in (0, 1)
        for figure in ("latency_train_step_s_median", "train_time_s")
        for relative_to in ("", "full_attention")  # the timing and its ratio to the reference
    } | {(*COUNTED, seed, "", "flops_fwd_per_example") for seed in (0, 1)}
    assert set(found) == expected, sorted(found)
    for key, step in found.items():
        assert (step.last_good, step.first_bad) == (repo[PLANTED - 1], repo[PLANTED]), key
        assert step.verdict == "regression" and step.current
        assert step.change > 1.7 and step.change < 2.3, (key, step.change)
    flops = found[(*COUNTED, 0, "", "flops_fwd_per_example")]
    assert flops.change == 2.0, "an exact figure steps by exactly its factor"
    assert len(analysed.regressions(current_only=True)) == len(expected)


def _key(step) -> tuple:
    """(task, model, seed, relative_to, figure) of a step's series."""
    return (*step.series[4:7], *step.series[8:])


def test_on_a_loaded_runner_the_ratio_to_the_reference_finds_the_step(tmp_path, repo) -> None:
    """Every run busy; the machine 3x slower from commit 3 on (its load), the planted cell 2x
    slower from commit PLANTED on: only the planted cell's ratios to the reference step."""
    history, runs = tmp_path / "history", tmp_path / "runs"
    rng = np.random.default_rng(5)
    for i, sha in enumerate(repo):
        load = 3.0 if i >= 3 else 1.0
        plant = 2.0 if i >= PLANTED else 1.0
        run = make_run(
            runs, f"run{i:02d}", sha, rng, busy=True, all_timings_factor=load, timing_factor=plant
        )
        add_run(history, run, tmp_path / "repo")
    analysed = analyse(history, tmp_path / "repo")
    found = {_key(s): s for s in analysed.steps}
    assert set(found) == {
        (*TIMED, seed, "full_attention", figure)
        for seed in (0, 1)
        for figure in ("latency_train_step_s_median", "train_time_s")
    }, sorted(found)
    assert {s.first_bad for s in found.values()} == {repo[PLANTED]}
    busy = analysed.points[(analysed.points["relative_to"] == "")]
    timing = busy[busy["figure"] == "latency_train_step_s_median"]
    assert timing["busy"].all() and len(timing) > 0, "busy timings are kept and shown"


def test_pure_noise_has_no_step(tmp_path, repo) -> None:
    analysed = analyse(_history(tmp_path, repo), tmp_path / "repo")
    assert analysed.steps == ()


def test_an_improvement_is_not_a_regression(tmp_path, repo) -> None:
    analysed = analyse(_history(tmp_path, repo, timing_factor=0.5), tmp_path / "repo")
    assert analysed.steps and {s.verdict for s in analysed.steps} == {"improvement"}
    assert analysed.regressions(current_only=False) == []


def test_a_new_machine_starts_new_series_without_a_step(tmp_path, repo) -> None:
    history, runs = tmp_path / "history", tmp_path / "runs"
    rng = np.random.default_rng(3)
    for i, sha in enumerate(repo):
        # from the planted commit on, CI runs on a new runner whose every timing is 2x slower
        cpu, factor = ("Old CPU", 1.0) if i < PLANTED else ("New CPU", 2.0)
        run = make_run(runs, f"run{i:02d}", sha, rng, cpu=cpu, all_timings_factor=factor)
        add_run(history, run, tmp_path / "repo")
    analysed = analyse(history, tmp_path / "repo")
    assert set(analysed.latest) == {
        "Old-CPU_AVX2_torch2.13.0+cpu_t1",
        "New-CPU_AVX2_torch2.13.0+cpu_t1",
    }
    assert analysed.latest["New-CPU_AVX2_torch2.13.0+cpu_t1"] == repo[-1]
    assert analysed.steps == (), "a slower new runner is not a regression"
    per_machine = analysed.points.groupby("machine_key")["git_sha"].nunique()
    assert sorted(per_machine) == [PLANTED, COMMITS - PLANTED]
    # the same runs on one machine key would read as a step: the split is what prevents it
    merged = analysed.points.copy()
    rows = merged[(merged["task"] == TIMED[0]) & (merged["model"] == TIMED[1])]
    series = rows[
        (rows["seed"] == 0)
        & (rows["figure"] == "latency_train_step_s_median")
        & (rows["relative_to"] == "")
    ]
    assert detect(list(series["value"]), HARNESS.get("latency_train_step_s_median")) != []


def test_without_a_repository_commits_are_ordered_by_their_recorded_dates(tmp_path, repo) -> None:
    history = _history(tmp_path, repo)
    frame, _ = read_history(history)
    runs = frame.drop_duplicates("run_id")
    order = order_commits(runs, None)
    assert order.shas == tuple(repo) and order.method == "commit date (no repository)"


# -- the detector alone, on the planted series it was chosen on (20 commits, step at 12)


def _noisy(rng: np.random.Generator, noise: float, step_at: int | None) -> np.ndarray:
    y = 0.010 * np.exp(noise * rng.standard_normal(20))
    if step_at is not None:
        y[step_at:] *= 2.0
    return y


def test_detector_finds_a_2x_step_in_10_percent_noise_at_its_commit() -> None:
    rng = np.random.default_rng(11)
    timing = HARNESS.get("latency_train_step_s_median")
    for _ in range(20):
        assert detect(_noisy(rng, 0.1, 12), timing) == [12]


def test_detector_finds_nothing_in_pure_noise() -> None:
    rng = np.random.default_rng(12)
    timing = HARNESS.get("latency_train_step_s_median")
    false_alarms = sum(bool(detect(_noisy(rng, 0.1, None), timing)) for _ in range(50))
    assert false_alarms == 0


def test_detector_on_exact_and_fraction_figures() -> None:
    flops, accuracy = HARNESS.get("flops_fwd_per_example"), HARNESS.get("accuracy")
    assert detect([1.3e6] * 11 + [2.6e6] * 9, flops) == [11]
    assert detect([1.3e6] * 19 + [1.3e6 + 100], flops) == [19], "an exact figure: one commit"
    assert detect([1.3e6] * 20, flops) == []
    assert detect([0.90] * 10 + [0.95] * 10, accuracy) == [10]
    assert detect([0.90] * 10 + [0.905] * 10, accuracy) == [], "below one point"
    assert detect([0.5, math.nan, 0.5, 0.5], accuracy) == []
    tail = HARNESS.get("latency_train_step_s_p90")
    assert detect([0.01] * 10 + [0.02] * 10, tail) == [], "a tail is never gated"


def test_runs_at_one_commit_make_one_point_with_the_widest_band(tmp_path, repo) -> None:
    history = tmp_path / "history"
    made = [
        make_run(tmp_path / "runs", f"rerun{k}", repo[0], np.random.default_rng(k), timing_factor=f)
        for k, f in enumerate((1.0, 3.0))
    ]
    for run in made:
        add_run(history, run, None)
    points = analyse(history, None, figure="latency_train_step_s_median", model=TIMED[1]).points
    point = points[(points["task"] == TIMED[0]) & (points["seed"] == 0)].iloc[0]
    values, lows, highs = [], [], []
    for run in made:
        (r,) = [r for r in read_records(run) if (r.task, r.model, r.seed) == (*TIMED, 0)]
        values.append(r.metrics["latency_train_step_s_median"])
        lows.append(min(r.metrics["latency_train_step_s_samples"]))
        highs.append(max(r.metrics["latency_train_step_s_samples"]))
    assert point["runs"] == 2 and point["value"] == pytest.approx(np.median(values))
    assert (point["low"], point["high"]) == (min(lows), max(highs))


@pytest.mark.parametrize(
    "remote",
    ["git@github.com:owner/uoe-bench.git", "https://github.com/owner/uoe-bench", "ssh://x/y.git"],
)
def test_commit_links_default_to_the_github_origin(tmp_path, repo, remote) -> None:
    path = tmp_path / "repo"
    subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    template = commit_url_template(path)
    if "github.com" in remote:
        assert template == "https://github.com/owner/uoe-bench/commit/{sha}"
    else:
        assert template is None, "no link: the dashboard shows the sha"
    assert commit_url_template(None) is None
