"""`bench check-model NAME` and the one way tests run over the model registry (`model_name`,
tests/conftest.py): a planted wrong `phases` is caught by the check-model selection, unknown
names are refused before pytest starts, and no test loops over the registry by hand."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench import check_model, registries
from bench.cli import main
from models.errors import InputError

TESTS = Path(__file__).resolve().parent
PLANTED = "planted_wrong_phases"  # registered by tests/fixtures/planted_phases.py


def _contract_tests() -> set[str]:
    """The test functions that take `model_name`, read from the test sources."""
    found = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            takes = isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            if takes and any(a.arg == "model_name" for a in node.args.args):
                found.add(f"{path.stem}.{node.name}")
    return found


def test_a_planted_wrong_phase_fails_the_check_model_selection(tmp_path: Path) -> None:
    """The planted model runs through exactly what `bench check-model` runs, in a subprocess (its
    registration stays there): every contract test runs for it, and only the phase test fails."""
    report = tmp_path / "report.xml"
    argv = check_model.pytest_argv(PLANTED, TESTS)
    argv += ["-p", "planted_phases", "-p", "no:cacheprovider", f"--junitxml={report}", "-q"]
    path = os.pathsep.join(p for p in (str(TESTS / "fixtures"), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        argv,
        cwd=TESTS.parent,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    cases = ET.parse(report).getroot().iter("testcase")
    outcome = {}
    for case in cases:
        test = f"{case.get('classname').rsplit('.', 1)[-1]}.{case.get('name')}"
        outcome[test] = "failed" if case.find("failure") is not None else "passed"
    assert {t.split("[")[0] for t in outcome} == _contract_tests()
    assert all(t.endswith(f"[{PLANTED}]") for t in outcome)
    failed = [t for t, result in outcome.items() if result == "failed"]
    assert failed == [f"test_profile.test_every_part_emits_its_phases_into_a_real_trace[{PLANTED}]"]
    assert "('ffn', 'router')" in done.stdout  # the declared phase no trace shows
    assert PLANTED not in registries.MODELS  # never registered in this process


def test_check_model_runs_the_selection_and_returns_its_exit_code(monkeypatch, capsys) -> None:
    ran = []

    def run(argv, cwd, check):
        ran.append((argv, cwd))
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(check_model.subprocess, "run", run)
    assert main(["check-model", "switch"]) == 3
    argv = [sys.executable, "-m", "pytest", str(TESTS), "-m", "model_contract", "--model", "switch"]
    assert ran == [([*argv, "-q"], TESTS.parent)]
    assert "-m model_contract --model switch" in capsys.readouterr().out


def test_check_model_refuses_before_pytest_starts(monkeypatch, capsys, tmp_path) -> None:
    def run(*args, **kwargs):
        raise AssertionError("pytest must not start")

    monkeypatch.setattr(check_model.subprocess, "run", run)
    assert main(["check-model", "mixtrl"]) == 2
    assert "Did you mean: mixtral?" in capsys.readouterr().err
    with pytest.raises(InputError, match=r"no .*tests/conftest\.py.*pip install -e"):
        check_model.tests_dir(tmp_path)
    monkeypatch.setattr(check_model.importlib.util, "find_spec", lambda name: None)
    assert main(["check-model", "mixtral"]) == 2
    assert "needs pytest, which is not installed: pip install -e" in capsys.readouterr().err


def test_pytest_refuses_an_unknown_model_option() -> None:
    argv = [sys.executable, "-m", "pytest", str(TESTS / "test_models_common.py")]
    argv += ["--model", "mixtrl", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=TESTS.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 4  # pytest's usage error
    assert "--model: unknown model 'mixtrl'. Did you mean: mixtral?" in done.stderr


def registry_loops(source: str) -> list[int]:
    """Lines where a test loops or parametrizes over `MODELS.names()` (directly, or through a
    module-level name bound to it) instead of taking `model_name`."""
    tree = ast.parse(source)

    def names_call(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Attribute)
            and n.attr == "names"
            and "MODELS" in {getattr(n.value, "attr", None), getattr(n.value, "id", None)}
            for n in ast.walk(node)
        )

    aliases = {
        target.id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign) and names_call(stmt.value)
        for target in stmt.targets
        if isinstance(target, ast.Name)
    }

    def over_registry(node: ast.AST) -> bool:
        return names_call(node) or any(
            isinstance(n, ast.Name) and n.id in aliases for n in ast.walk(node)
        )

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.For | ast.comprehension) and over_registry(node.iter):
            lines.append(node.iter.lineno)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "parametrize"
            and any(over_registry(arg) for arg in node.args)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_test_loops_over_the_registry_by_hand() -> None:
    """A loop or parametrization of its own would escape `--model` (as `-k NAME` once skipped
    the phase test): a registry test takes `model_name`."""
    found = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "conftest.py"
        for line in registry_loops(path.read_text(encoding="utf-8"))
    ]
    assert not found, f"take model_name instead of looping over MODELS.names(): {found}"


def test_the_loop_guard_finds_each_form() -> None:
    planted = (
        "NAMES = registries.MODELS.names()\n"
        "@pytest.mark.parametrize('name', registries.MODELS.names())\n"
        "def test_a(name): ...\n"
        "def test_b():\n"
        "    for name in NAMES: ...\n"
        "    traces = {n: 1 for n in MODELS.names()}\n"
        "    assert 'uoe' in set(MODELS.names())\n"
    )
    assert registry_loops(planted) == [2, 5, 6]
