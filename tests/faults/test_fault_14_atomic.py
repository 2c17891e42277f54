"""Fault 14: report files are written atomically and the manifest is strict JSON. Before, a
kill while saving a plot left a truncated (0-byte) PNG, and a non-finite number was written into
manifest.json as a bare `NaN`, which is not JSON."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from bench.manifest import Manifest, write_manifest
from bench.report import plot_figure as plots
from bench.run_plan import RunPlan


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_manifest_holds_no_bare_nan(tmp_path) -> None:
    values = {"lr": float("nan"), "curve": [1.0, float("inf"), -float("inf")]}
    plan = RunPlan("smoke", "tiny", ("full_attention",), ("majority",), (0,))
    path = write_manifest(tmp_path, Manifest("r", "now", plan, configs=values))
    parsed = _strict(path.read_text())
    assert parsed["configs"] == {"lr": "NaN", "curve": [1.0, "Infinity", "-Infinity"]}


def test_a_plot_cut_by_a_kill_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    fig = Figure()
    fig.subplots().plot([0, 1], [0, 1])
    plots.save(fig, tmp_path, "good")
    before = (tmp_path / "good.png").read_bytes()
    assert before.startswith(b"\x89PNG")

    def killed(self, target, **kwargs):  # writes part of the file, then the process "dies"
        if hasattr(target, "write"):
            target.write(b"\x89PNG partial")
        else:
            with open(target, "wb") as f:
                f.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", killed)
    with pytest.raises(KeyboardInterrupt):
        plots.save(fig, tmp_path, "good")
    with pytest.raises(KeyboardInterrupt):
        plots.save(fig, tmp_path, "new")
    assert (tmp_path / "good.png").read_bytes() == before  # the old plot stands whole
    assert not (tmp_path / "new.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
