"""Fault review 2, item 4: `bench profile --run-id ../../x` wrote its traces outside `--out`
(the run-id check covered `bench run` only). Now it is refused before anything runs, with the
message `bench run` gives, and nothing is created or changed outside `--out`."""

from __future__ import annotations

import pytest
from fault_helpers import tree_state

from bench.cli import main
from bench.runner.run_dir import RUN_ID_RULE

PROFILE = [
    *("profile", "full_attention", "smoke/majority", "--scale", "tiny"),
    *("--set", "data.n_train=64", "--set", "data.n_dev=16", "--set", "data.n_test=16"),
]


@pytest.mark.parametrize("run_id", ["../../x", "..", "a/b", "ABSOLUTE"])
def test_profile_refuses_a_run_id_that_leaves_out(tmp_path, capsys, run_id) -> None:
    if run_id == "ABSOLUTE":
        run_id = str(tmp_path / "elsewhere")
    out = tmp_path / "profiles" / "out"
    out.mkdir(parents=True)
    before = tree_state(tmp_path)
    argv = [*PROFILE, "--out", str(out), "--run-id", run_id, "--cache-dir", str(out / "cache")]

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert f"--run-id {run_id!r} is refused: {RUN_ID_RULE}" in err, err
    assert err.count("\n") == 1, err
    assert tree_state(tmp_path) == before  # not even --out was written
