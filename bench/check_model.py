"""`bench check-model NAME`: every registry contract test for one model, in a pytest subprocess.

Every test that runs over the model registry takes the model through one argument, `model_name`
(tests/conftest.py), which marks it `model_contract`; `--model NAME` narrows it to one model. So
`python -m pytest <repo>/tests -m model_contract --model NAME -q` is the whole contract for one
model: build, forward/backward, padding, parameters, analytic = counted FLOPs, determinism, the
backbone options and the profiler phases. The tests are the repository's, found beside the
source this module was imported from (an editable install: `pip install -e '.[dev]'`).
"""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
import sys
from pathlib import Path

from models.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install -e '.[dev]' in a checkout of the repository"


def tests_dir(root: Path = ROOT) -> Path:
    """The tests folder beside the source, or FileNotFoundError saying how to get one."""
    tests = root / "tests"
    if not (tests / "conftest.py").is_file():
        raise InputError(
            f"bench check-model runs the repository's tests and found none beside the installed "
            f"source (no {tests / 'conftest.py'}): {INSTALL}"
        )
    return tests


def pytest_argv(name: str, tests: Path) -> list[str]:
    """The command that runs every model-contract test for `name`, with this Python."""
    return [sys.executable, "-m", "pytest", str(tests), "-m", "model_contract", "--model", name]


def check_model(name: str) -> int:
    """Run the contract tests for registered model `name`; pytest's exit code. An unknown name
    (nearest names listed), a missing tests folder or pytest are refused before pytest starts."""
    from bench import registries

    registries.discover()
    registries.MODELS.entry(name)  # UnknownNameError lists the nearest names
    tests = tests_dir()
    if importlib.util.find_spec("pytest") is None:
        raise InputError(f"bench check-model needs pytest, which is not installed: {INSTALL}")
    argv = [*pytest_argv(name, tests), "-q"]
    print(f"bench check-model: {shlex.join(['python', *argv[1:]])}", flush=True)
    return subprocess.run(argv, cwd=tests.parent, check=False).returncode
