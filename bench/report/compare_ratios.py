"""Timing gates that hold on a loaded machine: each model's timing divided by a reference
model's timing of the same cell (same task, scale, seed and sweep point) in the same run, BASE
ratio against NEW ratio. A machine that is slower, or loaded by other work, stretches both
timings of a run about alike, so the ratio keeps what the code changed: `uoe` step time /
`full_attention` step time. On a busy machine (`machine_busy`, load above the cores), where the
absolute timings are only printed, the ratios of process CPU time still gate (the catalog's
`load_steady` figures); wall-time ratios are then printed as `busy`: two cells of one run are
timed minutes apart, and on the shared 2-core machine at load ~10 the wall ratio of an
unchanged model moved up to 2.7x while its CPU-time ratio moved at most 1.8x. Not gated either
for a cell that shared its device with other cells.

The figures taken are the catalog's gated timings that keep raw samples of seconds (the wall
and the process-CPU medians of a training step and of an inference batch); a rate is 1 / such a
median and would only repeat it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bench.metric_catalog import MetricCatalog
from bench.records import BUSY_KEY, CellId, Record
from bench.report.compare import Finding, Tolerances
from bench.report.frame import scalar_metrics
from models.errors import InputError
from suites.metric import Metric

DEFAULT_REFERENCE = "full_attention"


def ratio_metrics(catalog: MetricCatalog) -> list[Metric]:
    """The timings compared as ratios to the reference model."""
    return [
        m
        for m in catalog
        if m.kind == "timing"
        and m.gated
        and m.shape == "scalar"
        and m.samples
        and not m.inverse_samples
        and m.direction == "lower"
    ]


def timing_reference(
    base: Sequence[Record], new: Sequence[Record], asked: str | None
) -> tuple[str | None, str]:
    """(the reference model, or None, and a line saying why there is none). `asked` (from
    --timing-reference) must have ok cells in both runs; the default, full_attention, is used
    when both runs have it."""

    def has(records: Iterable[Record], model: str) -> bool:
        return any(r.model == model and r.status == "ok" for r in records)

    model = asked or DEFAULT_REFERENCE
    if has(base, model) and has(new, model):
        return model, ""
    if asked:
        models = sorted({r.model for r in base} & {r.model for r in new})
        raise InputError(
            f"--timing-reference {asked}: no ok cell of it in both runs; pick one of "
            f"{', '.join(models) or '(no model is in both runs)'}"
        )
    return None, (
        f"no timing ratios: {DEFAULT_REFERENCE} is not ok in both runs "
        "(--timing-reference MODEL names another)"
    )


def ratio_findings(
    base: Sequence[Record],
    new: Sequence[Record],
    reference: str,
    tol: Tolerances,
    catalog: MetricCatalog,
) -> list[Finding]:
    """One finding per (cell both runs have ok, timing) of every model but the reference:
    SLOWER when NEW's ratio exceeds BASE's by more than `tol.ratio_factor`, `faster` when it
    is below BASE's by as much, else `~`; `shared` instead when either run's cell or its
    reference cell shared its device, `busy` for a wall-time ratio when one ran on a busy
    machine."""
    base_ok = {r.cell: r for r in base if r.status == "ok"}
    new_ok = {r.cell: r for r in new if r.status == "ok"}
    metrics = ratio_metrics(catalog)
    findings = []
    for cell, b in base_ok.items():
        n = new_ok.get(cell)
        ref = CellId(cell.suite, cell.task, reference, cell.scale, cell.seed, cell.variant)
        b_ref, n_ref = base_ok.get(ref), new_ok.get(ref)
        if cell.model == reference or n is None or b_ref is None or n_ref is None:
            continue
        four = (b, n, b_ref, n_ref)
        shared = any(r.placement.get("device_shared") for r in four)
        busy = any(r.metrics.get(BUSY_KEY) for r in four)
        values = [scalar_metrics(r) for r in (b, b_ref, n, n_ref)]
        for m in metrics:
            if not all(v.get(m.name, 0.0) > 0 for v in values):
                continue
            old = values[0][m.name] / values[1][m.name]
            now = values[2][m.name] / values[3][m.name]
            verdict = _verdict(now / old, tol.ratio_factor)
            if shared and verdict != "~":
                verdict = "shared"
            elif busy and not m.load_steady and verdict != "~":
                verdict = "busy"
            findings.append(Finding(str(cell), m.name, old, now, verdict, relative_to=reference))
    return findings


def _verdict(change: float, factor: float) -> str:
    if change > factor:
        return "SLOWER"
    return "faster" if change < 1.0 / factor else "~"
