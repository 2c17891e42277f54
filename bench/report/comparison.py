"""`bench compare BASE NEW` as one value (`Comparison`): read both runs, keep the cells both have
(or those --models / --tasks pick), gate every figure (`bench.report.compare`) and each timing's
ratio to a reference model of the same run (`bench.report.compare_ratios`), and say what differs
between the runs (`bench.report.compare_cause`). The renderers (`compare_render`,
`compare_formats`, picked by `compare_view`) print it as text, Markdown, JSON or JUnit XML.

By default only the cells both runs have are compared and the others are counted ("7 models
only in BASE: not compared"); `require_all` fails every ok BASE cell that NEW lacks (CI's full
smoke run against the full reference). Runs that share no cell are an input error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.manifest import read_manifest
from bench.metric_catalog import HARNESS, MetricCatalog
from bench.records import Record, read_records
from bench.report.compare import Finding, Tolerances, compare_records
from bench.report.compare_cause import Cause, cause
from bench.report.compare_ratios import ratio_findings, timing_reference
from models.errors import InputError


@dataclass(frozen=True)
class Comparison:
    """compared: the cells both runs have (after the selection), as text; only_base/only_new:
    the cells of one run only (with `require_all`, BASE's are findings instead); notes: lines
    about what was not compared or gated."""

    base_dir: str
    new_dir: str
    tolerances: Tolerances
    catalog: MetricCatalog
    cause: Cause
    compared: tuple[str, ...]
    only_base: str
    only_new: str
    findings: tuple[Finding, ...]
    timing_reference: str | None
    notes: tuple[str, ...]
    require_all: bool

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.regression]

    @property
    def improvements(self) -> list[Finding]:
        return [f for f in self.findings if f.improvement]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)


def compare_dirs(
    base_dir: Path,
    new_dir: Path,
    tol: Tolerances,
    *,
    models: Sequence[str] = (),
    tasks: Sequence[str] = (),
    require_all: bool = False,
    reference: str | None = None,
) -> Comparison:
    """The comparison of two run directories (InputError when they share no cell, or a
    --models / --tasks name is in neither run)."""
    base_manifest, new_manifest = read_manifest(base_dir), read_manifest(new_dir)
    catalog = HARNESS.with_metrics([*base_manifest.suite_metrics, *new_manifest.suite_metrics])
    base_all, new_all = read_records(base_dir), read_records(new_dir)
    base = _select(base_all, new_all, models, tasks)
    new = _select(new_all, base_all, models, tasks)
    base_cells, new_cells = {r.cell for r in base}, {r.cell for r in new}
    shared = base_cells & new_cells
    if not shared:
        raise InputError(
            f"these runs share no cells: BASE {base_dir} has {_what(base)}, NEW {new_dir} has "
            f"{_what(new)}; compare runs of the same suite and scale (or pick --models/--tasks "
            "that both have)"
        )
    findings = compare_records(base, new, tol, catalog, require_all=require_all)
    ref, why_not = timing_reference(base, new, reference)
    notes = [why_not] if why_not else []
    if ref is not None:
        findings += ratio_findings(base, new, ref, tol, catalog)
    unknown = sorted({f.figure for f in findings if not f.is_status and f.figure not in catalog})
    if unknown:
        notes.append(
            f"WARNING: {len(unknown)} figure(s) not in the metric catalog, printed but not "
            f"gated: {', '.join(unknown)}"
        )
    in_both = [r for r in base if r.cell in shared]
    return Comparison(
        base_dir=str(base_dir),
        new_dir=str(new_dir),
        tolerances=tol,
        catalog=catalog,
        cause=cause(base_manifest, new_manifest, in_both, [r for r in new if r.cell in shared]),
        compared=tuple(str(r.cell) for r in in_both),
        only_base="" if require_all else _only(base, base_cells - new_cells, "BASE"),
        only_new=_only(new, new_cells - base_cells, "NEW"),
        findings=tuple(findings),
        timing_reference=ref,
        notes=tuple(notes),
        require_all=require_all,
    )


def _select(
    records: list[Record], other: list[Record], models: Sequence[str], tasks: Sequence[str]
) -> list[Record]:
    """The records of the chosen models and tasks; a name in neither run is an input error."""
    for what, names, key in (("model", models, "model"), ("task", tasks, "task")):
        known = {getattr(r, key) for r in [*records, *other]}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(
                f"--{what}s {','.join(unknown)}: in neither run; the runs have "
                f"{', '.join(sorted(known))}"
            )
    return [
        r for r in records if (not models or r.model in models) and (not tasks or r.task in tasks)
    ]


def _what(records: list[Record]) -> str:
    suites = sorted({f"{r.suite}/{r.scale}" for r in records})
    tasks = sorted({r.task for r in records})
    return f"{', '.join(suites) or 'no cells'} (tasks {', '.join(tasks) or '-'})"


def _only(records: list[Record], cells: set, side: str) -> str:
    """One line for the cells of one run only: whole models by name, the rest as a count."""
    if not cells:
        return ""
    mine = [r for r in records if r.cell in cells]
    models = sorted(
        {r.model for r in mine}
        - {r.model for r in records if r.cell not in cells}  # models with a compared cell
    )
    rest = sum(r.model not in models for r in mine)
    parts = []
    if models:
        parts.append(f"{len(models)} model(s) only in {side}: {', '.join(models)}")
    if rest:
        parts.append(f"{rest} other cell(s) only in {side}")
    return f"{'; '.join(parts)} ({len(mine)} cell(s)): not compared"
