"""The import direction models <- baselines <- suites <- bench, read from the source (an `ast`
walk over every module, function-level imports included), and the light `bench report`.

A back-edge fails with the module, line and import named, e.g.
`models/layers/attention.py:14 imports bench.records (models may import only models)`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each top-level package and the project packages it may import (itself included).
ALLOWED = {
    "models": {"models"},
    "baselines": {"models", "baselines"},
    "suites": {"models", "suites"},
    "bench": {"models", "baselines", "suites", "bench"},
}
FIXTURES = Path(__file__).parent / "fixtures" / "report"


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every import statement in `source`, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved within the same package, never a back-edge
                continue
            found.append((node.lineno, node.module or ""))
    return found


def back_edges(root: Path) -> list[str]:
    """One line per import that breaks the layering, for every package under `root`."""
    problems = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path.read_text(encoding="utf-8")):
                top = module.split(".")[0]
                if top in ALLOWED and top not in allowed:
                    where = path.relative_to(root)
                    problems.append(
                        f"{where}:{line} imports {module} "
                        f"({package} may import only {', '.join(sorted(allowed))})"
                    )
    return problems


def test_imports_run_one_way() -> None:
    problems = back_edges(ROOT)
    assert not problems, "import back-edges:\n" + "\n".join(problems)


def test_a_planted_back_edge_is_named(tmp_path: Path) -> None:
    for package in ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "models" / "config.py").write_text("import torch\nimport models.registry\n")
    (tmp_path / "suites" / "spec.py").write_text("def f():\n    from bench.records import Record\n")
    (tmp_path / "baselines" / "m.py").write_text("from suites.spec import TaskSpec\n")
    (tmp_path / "bench" / "cli.py").write_text("import suites.spec, baselines, models\n")
    assert back_edges(tmp_path) == [
        "baselines/m.py:1 imports suites.spec (baselines may import only baselines, models)",
        "suites/spec.py:2 imports bench.records (suites may import only models, suites)",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["report", str(FIXTURES / "lra")],
        ["report", str(FIXTURES / "eff"), "--format", "csv"],
        ["compare", str(FIXTURES / "lra"), str(FIXTURES / "lra")],
    ],
)
def test_report_and_compare_import_neither_torch_nor_a_model(argv: list[str]) -> None:
    script = (
        "import sys\n"
        "from bench.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'models', 'baselines'))\n"
        "assert code == 0, code\n"
        "assert not heavy, heavy[:5]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
