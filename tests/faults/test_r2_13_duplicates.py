"""Review 2, item 13: a name or seed given twice in `--seeds`, `--models` or `--tasks`. Before,
the cells ran twice (two records of one cell); now refused up front, like `--sweep` duplicates."""

from __future__ import annotations

import pytest
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main


@pytest.mark.parametrize(
    ("flag", "value", "twice"),
    [
        ("--seeds", "0,1,0", "0"),
        ("--models", "full_attention,full_attention", "full_attention"),
        ("--tasks", "majority,majority", "majority"),
    ],
)
def test_duplicate_is_refused(tmp_path, capsys, monkeypatch, flag, value, twice) -> None:
    stub_measurements(monkeypatch)
    argv = [*run_args(tmp_path), *TINY]
    if flag != "--tasks":
        argv += ["--tasks", "majority"]
    assert main([*argv, flag, value]) == 2
    err = capsys.readouterr().err
    assert f"bench: error: {flag} {value}: {twice} is given twice; list each once" in err
    assert not (tmp_path / "runs" / "r").exists()
