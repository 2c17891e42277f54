"""`bench gate`: the light CI gate runs the reference's suite (a tiny subset here: one model on
one task), compares it with the reference at CI's tolerances, appends a Markdown summary to
--summary, and exits 1 when a figure regressed. Its tolerances are `.ci/run`'s."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

from bench.cli import main
from bench.gate import ci_tolerances
from bench.records import RecordStore, read_records

ROOT = Path(__file__).parent.parent
REFERENCE = ROOT / "results" / "reference" / "smoke"


def test_ci_run_compares_with_the_gates_tolerances() -> None:
    text = (ROOT / ".ci" / "run").read_text()
    compare = text[text.index("bench compare results/reference/smoke") :].split("\n\n")[0]
    flags = dict(re.findall(r"--([a-z-]+) ([0-9.e-]+)", compare))
    t = ci_tolerances()
    assert {k: float(v) for k, v in flags.items()} == {
        "factor": t.factor,
        "acc-tol": t.acc_tol,
        "rel-tol": t.rel_tol,
        "ratio-factor": t.ratio_factor,
    }
    assert "--require-all" in compare, "CI runs the whole smoke suite: every cell required"


def test_the_gate_passes_a_rerun_and_fails_a_regression(tmp_path, capsys) -> None:
    # a reference whose full_attention/majority cell had one parameter fewer
    changed = tmp_path / "reference"
    shutil.copytree(REFERENCE, changed)
    (changed / "records.jsonl").unlink()
    store = RecordStore(changed)
    for r in read_records(REFERENCE):
        if r.model == "full_attention" and r.task == "majority":
            r = dataclasses.replace(r, params_total=r.params_total - 1)
        store.append(r)
    summary = tmp_path / "summary.md"
    common = ["--models", "full_attention", "--tasks", "majority", "--out", str(tmp_path)]
    common += ["--cache-dir", str(tmp_path / "cache"), "--summary", str(summary)]
    code = main(["gate", "--reference", str(REFERENCE), "--run-id", "a", *common])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 cell(s) compared" in out and "no regression in 1 compared cell(s)" in out
    code = main(["gate", "--reference", str(changed), "--run-id", "b", *common])
    out = capsys.readouterr().out
    assert code == 1, out
    md = summary.read_text()
    assert md.count("### bench compare") == 2, "appended, as $GITHUB_STEP_SUMMARY expects"
    assert "### REGRESSIONS (1 figure(s))" in md
    assert "smoke/majority/full_attention/tiny/seed0: parameters" in md
