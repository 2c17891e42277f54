"""Fault 8: a corrupt manifest says which file is corrupt and how to recover. Before, a
truncated, emptied (`{}`) or overwritten manifest.json gave `bench: error: plan` or a bare JSON
decoding message."""

from __future__ import annotations

import json

import pytest

from bench import runner
from bench.cli import main

CORRUPTIONS = {
    "truncated": lambda text: text[: len(text) // 2].encode(),
    "empty object": lambda text: b"{}",
    "random bytes": lambda text: bytes(range(256)) * 4,
    "plan without fields": lambda text: json.dumps({"plan": {"suite": "smoke"}}).encode(),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_corrupt_manifest_names_the_file_and_the_recovery(tmp_path, capsys, how) -> None:
    plan = runner.RunPlan("smoke", "tiny", ("full_attention",), ("majority",), (0,))
    run_dir = tmp_path / "r"
    argv = ["/x/bench", "run", "--suite", "smoke", "--models", "full_attention"]
    runner.start(runner.resolve(plan), run_dir, argv)
    manifest = run_dir / "manifest.json"
    manifest.write_bytes(CORRUPTIONS[how](manifest.read_text()))

    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{manifest} is corrupt" in err, err
    assert "bench run --suite smoke --models full_attention" in err  # the command to rerun
    assert "Traceback" not in err
    if how != "plan without fields":  # `bench report` names it too
        assert main(["report", str(run_dir)]) == 2
        assert f"{manifest} is corrupt" in capsys.readouterr().err
