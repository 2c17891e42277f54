"""What `bench compare` prints and how it picks cells: the cause first (an override named as
"model.dim 32 -> 48, all tasks"), the cells both runs have by default (the others as one count
line; --require-all fails them), a cell failed in NEW still fails, runs that share no cells are
an input error (exit 2), and the md / json / junit outputs parse."""

from __future__ import annotations

import dataclasses
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.cli import main
from bench.manifest import read_raw_manifest
from bench.records import RecordStore, read_records

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "lra"
CELL = "lra/listops/switch/tiny/seed0"


def _copy(tmp_path: Path, name: str, edit=lambda r: r, overrides=()) -> Path:
    """The fixture run, each record through `edit` (None drops it), every record given a
    resolved config (model.dim 32, or the value an override sets), the plan `overrides`."""
    out = tmp_path / name
    shutil.copytree(FIXTURE, out)
    (out / "records.jsonl").unlink()
    dim = int(overrides[0].split("=")[1]) if overrides else 32
    config = {"model": {"dim": dim, "depth": 2}, "train": {"steps": 10}}
    records = read_records(FIXTURE)
    raw = read_raw_manifest(out)
    raw["plan"]["overrides"] = list(overrides)
    raw["configs"] = {r.task: config for r in records}  # the manifest states the records' config
    (out / "manifest.json").write_text(json.dumps(raw))
    store = RecordStore(out)
    for r in records:
        r = edit(dataclasses.replace(r, config=config))
        if r is not None:
            store.append(r)
    return out


def _compare(capsys, base: Path, new: Path, *extra: str) -> tuple[int, str]:
    code = main(["compare", str(base), str(new), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_cause_comes_first_then_the_summary_then_the_changes(tmp_path, capsys) -> None:
    base = _copy(tmp_path, "base")

    def wider(r):
        if r.status != "ok":
            return r
        return dataclasses.replace(
            r,
            params_total=r.params_total * 2,
            metrics={**r.metrics, "accuracy": r.metrics["accuracy"] + 0.01},
        )

    new = _copy(tmp_path, "new", wider, overrides=("model.dim=48",))
    code, out = _compare(capsys, base, new)
    lines = out.splitlines()
    assert code == 1, out
    assert lines[1:3] == [
        "  config: --set none (BASE) -> model.dim=48 (NEW)",
        "  model.dim 32 -> 48, all tasks",
    ], out
    assert lines.index("summary: parameters x1-2, accuracy +0.0...+1.0 points") < lines.index(
        "REGRESSIONS (8 figure(s)):"
    ), out
    assert "  parameters  changed: 8 figure(s) in 8 cell(s)  x2" in lines
    assert "  accuracy  better: 8 figure(s) in 8 cell(s)  +1.0 points" in lines
    assert len(lines) <= 30


def test_only_the_cells_both_runs_have_are_compared_by_default(tmp_path, capsys) -> None:
    base = _copy(tmp_path, "base")
    fewer = _copy(tmp_path, "fewer", lambda r: r if r.model == "full_attention" else None)
    code, out = _compare(capsys, base, fewer)
    assert code == 0, out
    assert (
        "4 cell(s) compared; 2 model(s) only in BASE: linformer, switch (6 cell(s)): not compared"
    ) in out
    assert "MISSING" not in out and "REGRESSION" not in out
    code, out = _compare(capsys, base, fewer, "--require-all")
    assert code == 1 and "cells  missing: 4 figure(s) in 4 cell(s)" in out, out
    # --models narrows both runs to the cells asked for
    code, out = _compare(capsys, base, base, "--models", "switch", "--tasks", "listops")
    assert code == 0 and "2 cell(s) compared" in out, out


def test_a_cell_that_failed_in_new_still_fails(tmp_path, capsys) -> None:
    def failed(r):
        if str(r.cell) != CELL:
            return r
        return dataclasses.replace(r, status="error", reason="boom", metrics={})

    code, out = _compare(capsys, _copy(tmp_path, "base"), _copy(tmp_path, "new", failed))
    assert code == 1, out
    assert f"      {CELL}: status ok -> error: boom" in out


def test_runs_that_share_no_cells_are_an_input_error(tmp_path, capsys) -> None:
    base = _copy(tmp_path, "base", lambda r: r if r.task == "listops" else None)
    new = _copy(tmp_path, "new", lambda r: r if r.task == "text" else None)
    code, out = _compare(capsys, base, new)
    assert code == 2
    assert "bench: error: these runs share no cells" in out
    code, out = _compare(capsys, base, base, "--models", "nosuch")
    assert code == 2 and "--models nosuch: in neither run" in out


def test_busy_timings_are_one_count_line(tmp_path, capsys) -> None:
    def busy_and_slow(r):
        if r.status != "ok":
            return r
        m = {**r.metrics, "machine_busy": "load 4 > 2 cores"}
        m["latency_train_step_s_median"] *= 3
        return dataclasses.replace(r, metrics=m)

    new = _copy(tmp_path, "new", busy_and_slow)
    code, out = _compare(capsys, _copy(tmp_path, "base"), new, "--ratio-factor", "4")
    assert code == 0, out
    assert "not gated: 8 timing(s) of cells on a busy machine" in out
    assert "| busy" not in out and len(out.splitlines()) <= 10, out
    assert out.count("| busy") == 0
    assert _compare(capsys, _copy(tmp_path, "b2"), new, "--verbose")[1].count("| busy") == 8


def test_md_json_and_junit_parse(tmp_path, capsys) -> None:
    base = _copy(tmp_path, "base")

    def more_params(r):
        return dataclasses.replace(r, params_total=3001) if str(r.cell) == CELL else r

    new = _copy(tmp_path, "new", more_params)
    code, md = _compare(capsys, base, new, "--format", "md")
    assert code == 1
    assert md.startswith("### bench compare ") and "### REGRESSIONS (1 figure(s))" in md
    code, text = _compare(capsys, base, new, "--format", "json")
    data = json.loads(text)
    assert code == 1 and data["regressed"] is True
    (regression,) = [f for f in data["findings"] if f["regression"]]
    assert regression == {
        "cell": CELL,
        "figure": "params_total",
        "relative_to": None,
        "base": 3000.0,
        "new": 3001.0,
        "verdict": "CHANGED",
        "regression": True,
        "improvement": False,
    }
    assert len(data["cells_compared"]) == 10
    code, xml = _compare(capsys, base, new, "--format", "junit")
    root = ET.fromstring(xml.encode())
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert code == 1 and len(cases) == 10 and suite.get("failures") == "1"
    (failed,) = [c for c in cases if c.find("failure") is not None]
    assert failed.get("name") == CELL and failed.get("classname") == "lra.listops"
    assert "params_total CHANGED: 3000.0 -> 3001.0" in failed.find("failure").text
