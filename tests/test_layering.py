"""The import direction models <- baselines <- suites <- bench, read from the source (an `ast`
walk over every module, function-level imports included), and the light `bench report`.

A back-edge fails with the module, line and import named, e.g.
`models/layers/attention.py:14 imports bench.records (models may import only models)`.
"""

from __future__ import annotations

import ast
import collections
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


PROJECT = tuple(ALLOWED)


def module_names(root: Path) -> dict[str, Path]:
    """{dotted module: file} of every project module under `root`; a package is its
    `__init__.py`."""
    modules = {}
    for package in PROJECT:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_targets(node: ast.Import | ast.ImportFrom, here: str, is_package: bool) -> list[str]:
    """The dotted names one import statement of module `here` asks for: `import a.b` -> a.b;
    `from a.b import c` -> a.b.c and a.b (the caller keeps the ones that are modules);
    a relative import is resolved against `here`'s package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = here.split(".") if is_package else here.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """{module: {imported project module: first line}} of every project module under `root`,
    read from the source: every import at any depth (function bodies and `if TYPE_CHECKING:`
    blocks included, since a circle hidden there is still a circle).

    `from a.b import c` is an edge to the module a.b.c when a/b/c.py (or a/b/c/__init__.py)
    exists, else to a.b; `import a.b.c` is an edge to the longest existing module of a.b.c.
    A package counts as its `__init__.py`: importing a name a package `__init__` re-exports is
    an edge to the `__init__`, which has an edge to each module it re-exports from. The parent
    packages Python initialises on the way to a submodule are not edges (every submodule would
    otherwise close a circle with an `__init__` that re-exports it)."""
    modules = module_names(root)
    graph: dict[str, dict[str, int]] = {}
    for here, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(here, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = import_targets(node, here, is_package)
            if isinstance(node, ast.ImportFrom):
                names, base = targets[:-1], targets[-1]
                found = [t for t in names if t in modules]
                if len(found) < len(names) and base in modules:
                    found.append(base)
            else:
                found = []
                for name in targets:
                    parts = name.split(".")
                    prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
                    found += [next((p for p in prefixes if p in modules), "")]
            for target in found:
                if target and target != here:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The circles of `graph`, each as its modules in import order, starting (and ending) at
    its first module alphabetically: for every module of a strongly connected component, the
    shortest circle through it (so every module of a tangle is named in some circle)."""
    cycles: list[list[str]] = []
    for component in _components(graph):
        for start in sorted(component):
            cycle = _shortest_cycle(graph, start, component)
            first = cycle.index(min(cycle))
            rotated = [*cycle[first:], *cycle[:first]]
            if rotated not in cycles:
                cycles.append(rotated)
    return sorted(cycles)


def _components(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, {})))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, component: set[str]) -> list[str]:
    """The modules of the shortest circle from `start` back to it, within `component`."""
    came_from: dict[str, str] = {}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return path[::-1]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is in a strongly connected component but on no circle")


def describe_cycle(cycle: list[str], graph: dict[str, dict[str, int]], root: Path) -> str:
    """`a -> b -> a (a.py:3 imports b; b.py:9 imports a)`."""
    modules = module_names(root)
    steps = list(zip(cycle, [*cycle[1:], cycle[0]], strict=True))
    where = "; ".join(f"{modules[a].relative_to(root)}:{graph[a][b]} imports {b}" for a, b in steps)
    return f"{' -> '.join([*cycle, cycle[0]])} ({where})"


def circles(root: Path) -> list[str]:
    """One line per import circle among the project modules under `root`."""
    graph = import_graph(root)
    return [describe_cycle(c, graph, root) for c in import_cycles(graph)]


def test_no_module_imports_itself_through_a_circle() -> None:
    found = circles(ROOT)
    assert not found, "import circles (give the shared piece its own module):\n" + "\n".join(found)


def test_a_planted_circle_is_named(tmp_path: Path) -> None:
    for package in ("models", "baselines", "suites", "bench", "bench/runner"):
        (tmp_path / package).mkdir()
    runner = tmp_path / "bench" / "runner"
    # A three-module circle, closed by a TYPE_CHECKING import and a function-level one.
    (runner / "execute.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    from bench.runner.launch import L\n"
    )
    (runner / "launch.py").write_text("import os\n\n\ndef f():\n    import bench.runner.ray.x\n")
    (runner / "ray.py").write_text("from bench.runner import execute\n")
    # A package __init__ that re-exports a module which imports a name from the package.
    (runner / "__init__.py").write_text("from bench.runner.plan import Plan\n")
    (runner / "plan.py").write_text("from bench.runner import DEFAULT\n")
    # No circle: a sibling module, a parent package, a relative import of a leaf.
    (tmp_path / "bench" / "cli.py").write_text("from bench.runner import execute, plan\n")
    (tmp_path / "suites" / "__init__.py").write_text("from . import spec\n")
    (tmp_path / "suites" / "spec.py").write_text("import models.config\n")
    (tmp_path / "models" / "config.py").write_text("import torch\n")
    assert circles(tmp_path) == [
        "bench.runner -> bench.runner.plan -> bench.runner "
        "(bench/runner/__init__.py:1 imports bench.runner.plan; "
        "bench/runner/plan.py:1 imports bench.runner)",
        "bench.runner.execute -> bench.runner.launch -> bench.runner.ray -> bench.runner.execute "
        "(bench/runner/execute.py:3 imports bench.runner.launch; "
        "bench/runner/launch.py:5 imports bench.runner.ray; "
        "bench/runner/ray.py:1 imports bench.runner.execute)",
    ]


LIGHT = ("models", "models.errors")


@pytest.mark.parametrize(
    "argv",
    [
        ["report", str(FIXTURES / "lra")],
        ["report", str(FIXTURES / "eff"), "--format", "csv"],
        ["compare", str(FIXTURES / "lra"), str(FIXTURES / "lra")],
    ],
)
def test_report_and_compare_import_neither_torch_nor_a_model(argv: list[str]) -> None:
    """The library's package and its one dependency-free module, the bad-input error the whole
    harness raises (`models.errors`), are the only `models` modules the report side may load."""
    script = (
        "import sys\n"
        f"LIGHT = {LIGHT!r}\n"
        "from bench.cli import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'models', 'baselines') and m not in LIGHT)\n"
        "assert code == 0, code\n"
        "assert not heavy, heavy[:5]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
