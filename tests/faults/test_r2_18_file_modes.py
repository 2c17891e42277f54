"""Fault review 2, item 18 (file modes): `manifest.json`, `command.txt`, report files and cache
entries (the unit test below) were created mode 0600 (`tempfile.mkstemp`), while `records.jsonl`
got 0644 from the umask: a shared results folder became unreadable to colleagues. Now every file
the harness writes honours the umask, as `open()` does."""

from __future__ import annotations

import os
import stat

import pytest
from fault_helpers import TINY, run_args, stub_measurements

from bench.cli import main
from suites.atomic import write_text_atomic
from suites.cache import save_tensors


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_and_report_files_honour_the_umask(tmp_path, monkeypatch, umask) -> None:
    stub_measurements(monkeypatch)
    assert main(run_args(tmp_path, "r", *TINY, "--tasks", "majority")) == 0
    run_dir = tmp_path / "runs" / "r"
    out = tmp_path / "report"
    assert main(["report", str(run_dir), "--out", str(out)]) == 0
    files = {
        "manifest.json": run_dir / "manifest.json",
        "command.txt": run_dir / "command.txt",
        "records.jsonl": run_dir / "records.jsonl",
        **{f"report {p.name}": p for p in out.iterdir()},
    }
    assert any(name.endswith(".png") for name in files), files
    modes = {name: oct(_mode(path)) for name, path in files.items()}
    assert set(modes.values()) == {"0o644"}, modes


@pytest.mark.parametrize("mask, expected", [(0o002, 0o664), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_take_their_mode_from_the_umask(tmp_path, umask, mask, expected) -> None:
    import torch

    umask(mask)
    write_text_atomic(tmp_path / "a.txt", "x\n")
    save_tensors({"x": torch.zeros(2)}, tmp_path / "t.pt")
    with open(tmp_path / "plain.txt", "w") as f:  # what open() gives, the reference
        f.write("x\n")
    assert _mode(tmp_path / "plain.txt") == expected
    assert _mode(tmp_path / "a.txt") == expected
    assert _mode(tmp_path / "t.pt") == expected
