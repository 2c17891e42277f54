"""The GitHub Actions workflow (.github/workflows/bench.yml) parses as YAML, caches the data and
the history, runs the gate with the step summary, adds the run to the history, publishes the
dashboard, and its `bench` command lines parse with the CLI's own parser (the history adds the
gate's run)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bench.cli import _parser

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "bench.yml"


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_parses_and_has_its_steps() -> None:
    flow = _workflow()
    assert {"push", "pull_request"} <= set(flow[True])  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["bench"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact"} <= set(uses)
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == "3.11"
    cached = [s["with"]["path"] for s in steps if s.get("uses", "").startswith("actions/cache")]
    assert "${{ env.BENCH_CACHE_DIR }}" in cached and "${{ env.BENCH_HISTORY }}" in cached
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "pip install -e '.[dev]'" in runs and "torch==2.13.0" in runs
    assert 'bench gate --summary "$GITHUB_STEP_SUMMARY"' in runs
    order = [runs.index(c) for c in ("bench gate", "bench history add", "bench history dashboard")]
    assert order == sorted(order)


def test_its_bench_commands_parse_with_the_cli() -> None:
    flow = _workflow()
    env = {**flow["env"], "GITHUB_STEP_SUMMARY": "summary.md"}
    lines = [
        line.strip()
        for step in flow["jobs"]["bench"]["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("bench ")
    ]
    assert len(lines) == 4, lines
    parsed = []
    for line in lines:
        for name, value in env.items():
            line = line.replace(f"${name}", value)
        parsed.append(_parser().parse_args(shlex.split(line.split(">")[0])[1:]))
    gate, add, *shown = parsed
    assert gate.summary == Path("summary.md")
    assert add.run_dirs == [Path("results/runs") / gate.run_id], "the gate's run is added"
    assert all(a.history == Path(env["BENCH_HISTORY"]) for a in (add, *shown))
