"""Fault review 2, item 1: a `.lock` that is a symbolic link. Before, `bench run --resume RUN`
opened it with O_RDWR|O_CREAT, truncated the link's target and wrote `pid N on host` into it (a
run folder from git, a tarball or a shared disk is enough). Now the run folder is refused, naming
the link, and the target keeps its bytes and mtime."""

from __future__ import annotations

import pytest
from fault_helpers import TINY, run_args, stub_measurements, tree_state

from bench.cli import main

VICTIM_BYTES = b"precious data, not a lock\n"


def test_resume_refuses_a_symlinked_lock_and_leaves_its_target_alone(
    tmp_path, monkeypatch, capsys
) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 0
    run_dir = tmp_path / "runs" / "r"
    victim = tmp_path / "victim" / "notes.txt"
    victim.parent.mkdir()
    victim.write_bytes(VICTIM_BYTES)
    (run_dir / ".lock").unlink()
    (run_dir / ".lock").symlink_to(victim)
    before = tree_state(tmp_path, run_dir, tmp_path / "cache")
    capsys.readouterr()

    assert main(["run", "--resume", str(run_dir), "--no-progress"]) == 2

    err = capsys.readouterr().err
    assert f"{run_dir / '.lock'} is a symbolic link" in err, err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert victim.read_bytes() == VICTIM_BYTES
    assert tree_state(tmp_path, run_dir, tmp_path / "cache") == before


def test_acquire_never_opens_a_dangling_lock_link(tmp_path) -> None:
    """A link to a file that does not exist yet: O_CREAT would create the target."""
    from bench.runner.lock import acquire
    from models.errors import InputError

    target = tmp_path / "elsewhere" / "created-by-the-lock"
    target.parent.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").symlink_to(target)
    with pytest.raises(InputError, match="is a symbolic link"):
        acquire(run_dir)
    assert not target.exists()
