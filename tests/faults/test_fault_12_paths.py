"""Fault 12: a run never writes outside --out, and an unwritable --out is a message, not a
traceback. Before, `--run-id ../../x` or `--run-id /abs` wrote outside --out, and an --out that
could not be created raised NotADirectoryError/PermissionError with a traceback."""

from __future__ import annotations

import pytest
from fault_helpers import TINY, stub_measurements

from bench.cli import main


@pytest.mark.parametrize("run_id", ["../../escaped", "/ABS", "a/b", "..", ".", ""])
def test_run_id_must_be_one_path_component(tmp_path, capsys, monkeypatch, run_id) -> None:
    stub_measurements(monkeypatch)
    out = tmp_path / "deep" / "out"
    run_id = run_id.replace("/ABS", str(tmp_path / "abs"))
    argv = ["run", *TINY, "--tasks", "majority", "--out", str(out), "--run-id", run_id]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")])
    assert code == 2
    assert "is refused: a run id is 1 to 128 characters" in capsys.readouterr().err
    written = [p for p in tmp_path.rglob("manifest.json")]
    assert written == []


def test_unwritable_out_is_a_message(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    argv = ["run", *TINY, "--tasks", "majority", "--out", str(blocker / "runs")]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert f"--out {blocker / 'runs'} cannot be written" in err
    assert "pass a directory you can write" in err
