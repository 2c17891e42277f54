"""Review 2, item 17: run ids. Before, an id could hold newlines, quotes and spaces, 300
characters gave a traceback (ENAMETOOLONG), and the refusal claimed a stricter rule than the check
applied. Now one rule, stated exactly by the one message; and every printed `--resume` command is
shell-quoted (an --out with spaces or quotes)."""

from __future__ import annotations

import shlex
import signal

import pytest
from fault_helpers import TINY, stub_measurements

from bench.cli import main
from bench.records import Record
from bench.runner.interrupt import RunInterrupted, report_interrupt
from bench.runner.run_log import RunLog

RULE = (
    "a run id is 1 to 128 characters, each a letter, a digit, '.', '_' or '-', the first a "
    "letter or a digit"
)


def _argv(out, run_id: str) -> list[str]:
    return ["run", *TINY, "--tasks", "majority", "--out", str(out), f"--run-id={run_id}"]


@pytest.mark.parametrize(
    "run_id", ["a\nb", "a'b", 'a"b', "a b", "x" * 300, "x" * 129, ".hidden", "-x", "a$b", ""]
)
def test_bad_ids_are_refused_with_the_rule(tmp_path, capsys, monkeypatch, run_id) -> None:
    stub_measurements(monkeypatch)
    out = tmp_path / "out"
    assert main([*_argv(out, run_id), "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert f"bench: error: --run-id {run_id!r} is refused: {RULE}" in err
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("run_id", ["A.b_c-1", "x" * 128, "9"])
def test_ids_the_rule_allows_run(tmp_path, capsys, monkeypatch, run_id) -> None:
    stub_measurements(monkeypatch)
    out = tmp_path / "out"
    assert main([*_argv(out, run_id), "--cache-dir", str(tmp_path / "c")]) == 0
    assert (out / run_id / "records.jsonl").is_file()


def test_printed_resume_commands_are_shell_quoted(tmp_path, capsys, monkeypatch) -> None:
    stub_measurements(monkeypatch)
    out = tmp_path / "it's my runs"
    argv = [*_argv(out, "r"), "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2  # the run exists: the refusal names the resume command
    quoted = shlex.quote(str(out / "r"))
    assert quoted != str(out / "r")
    assert f"--resume {quoted}" in capsys.readouterr().err
    report_interrupt(RunInterrupted(signal.SIGINT), out / "r")
    assert f"bench run --resume {quoted}" in capsys.readouterr().err
    assert shlex.split(f"bench run --resume {quoted}")[-1] == str(out / "r")
    failed = Record("r", "smoke", "majority", "m", "tiny", 0, status="error", reason="boom")
    log = RunLog(out / "r", {})
    log.finish([failed], out / "r")
    err = capsys.readouterr().err
    assert f"bench report {quoted}" in err
    assert f"bench run --resume {quoted}" in err
