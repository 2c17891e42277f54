"""`bench report --published SOURCE`: each measured figure beside the published one, with the
difference and the protocol differences that apply.

One table per (source, scale), never several sources in one table or one average: a source's
average is compared only with our average over the same five tasks (and only when every task
was measured). Accuracy sources (`lra-jax`, `nystromformer`, `skyformer`) compare test accuracy
per task; `lra-efficiency` compares speed and memory *ratios to full attention* at each length
(absolute TPU figures do not transfer); `uoe-paper` checks the abstract's LRA claims (average
gain over every other model, FLOPs relative to the best MoE, in both FLOP conventions) on the
models this run measured; `uoe-efficiency` sets each MoE's step time and memory relative to
uoe_paper beside the UoE README figure's ratios to UoE at each length; `transformer-xl` and
the abstract's LM claim are language modelling's (`bench.report.published_lm`). Published
figures come from `suites.published`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import mean

from bench.manifest import read_manifest
from bench.report.frame import Runs, metrics_frame, seed_summary
from bench.report.published_claims import (
    LRA_TASKS,
    efficiency_tables,
    uoe_efficiency_tables,
    uoe_tables,
)
from bench.report.published_lm import transformer_xl_tables, uoe_lm_tables
from bench.report.table import MISSING, Cell, Table
from suites.published import (
    MODEL_NAMES,
    PROTOCOLS,
    PublishedResult,
    expand_sources,
    figure_of,
    load_published,
)

ACCURACY_SOURCES = ("lra-jax", "nystromformer", "skyformer")
UNVERIFIED_NOTE = "? this published figure could not be checked against the paper's text."


def published_tables(
    runs: Runs, run_dirs: Sequence[Path], names: Sequence[str]
) -> tuple[list[Table], list[str]]:
    """The comparison tables for the `--published` names, and a note for each one left out."""
    published = load_published()
    configs = _task_configs(run_dirs)
    tables: list[Table] = []
    notes: list[str] = []
    for source in expand_sources(names):
        rows = [p for p in published if p.source == source]
        if source in ACCURACY_SOURCES:
            built = _accuracy_tables(runs, source, rows, configs)
        elif source == "lra-efficiency":
            built = efficiency_tables(runs, rows)
        elif source == "uoe-efficiency":
            built = uoe_efficiency_tables(runs, rows)
        elif source == "transformer-xl":
            built = transformer_xl_tables(runs, rows)
        else:
            built = uoe_tables(runs, rows) + uoe_lm_tables(runs, rows)
        if not built:
            needs = {
                "uoe-paper": "all five LRA tasks, or WikiText-103, for uoe or uoe_paper",
                "uoe-efficiency": "an ok record of one of its models at a length it plots "
                "(lra_efficiency at scale uoe or uoe_cpu)",
            }.get(source, "an ok record of a task it reports")
            notes.append(f"published {source}: table omitted, the runs lack {needs}")
        tables += built
    return tables, notes


def _task_configs(run_dirs: Sequence[Path]) -> dict[tuple[str, str, str], dict]:
    """(suite, scale, task) -> the task's resolved config from the runs' manifests."""
    out: dict[tuple[str, str, str], dict] = {}
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        plan = manifest.plan
        for task, cfg in manifest.configs.items():
            out[(plan.suite, plan.scale, task)] = cfg
    return out


def _published_cell(figure: PublishedResult | None, notes: set[str]) -> Cell:
    if figure is None:
        return Cell(MISSING)
    if figure.verified == "no":
        notes.add(UNVERIFIED_NOTE)
        return Cell(f"{figure.value:.2f}?")
    return Cell(f"{figure.value:.2f}")


def _accuracy_tables(runs: Runs, source: str, rows, configs) -> list[Table]:
    metrics = metrics_frame(runs.records)
    summary = seed_summary(metrics[metrics.suite == "lra"], "accuracy")
    protocol = PROTOCOLS[source]
    tables = []
    for scale, group in summary.groupby("scale", sort=False):
        notes: set[str] = set()
        body = []
        for model in dict.fromkeys(group.model):
            theirs = MODEL_NAMES.get(model, {}).get(source)
            ours_by_task: dict[str, float] = {}
            for task in LRA_TASKS:
                hit = group[(group.model == model) & (group.task == task)]
                if hit.empty:
                    continue
                m, sd, n = (float(hit.iloc[0][k]) for k in ("mean", "std", "count"))
                ours_by_task[task] = 100 * m
                figure = figure_of(rows, theirs, task, "accuracy_pct") if theirs else None
                text = f"{100 * m:.2f}" + (f" ± {100 * sd:.2f}" if n > 1 else "")
                body.append(_row(model, theirs, task, text, int(n), 100 * m, figure, notes))
            if len(ours_by_task) == len(LRA_TASKS):
                figure = figure_of(rows, theirs, "average", "accuracy_pct") if theirs else None
                avg = mean(ours_by_task.values())
                body.append(_row(model, theirs, "average", f"{avg:.2f}", None, avg, figure, notes))
        if not body:
            continue
        ordered = [*_protocol_notes(source, scale, configs), *sorted(notes)]
        tables.append(
            Table(
                f"published_{source}_{scale}",
                f"Test accuracy (%) at scale {scale} beside {protocol.name}",
                (
                    "model",
                    "published as",
                    "task",
                    "ours %",
                    "seeds",
                    "published %",
                    "ours - published",
                ),
                tuple(body),
                tuple(ordered),
                label_columns=3,
            )
        )
    return tables


def _row(model, theirs, task, text, seeds, value, figure, notes) -> tuple[Cell, ...]:
    diff = MISSING if figure is None else f"{value - figure.value:+.2f}"
    return (
        Cell(model),
        Cell(theirs or "(not in source)"),
        Cell(task),
        Cell(text),
        Cell(MISSING if seeds is None else str(seeds)),
        _published_cell(figure, notes),
        Cell(diff),
    )


def _protocol_notes(source: str, scale: str, configs) -> list[str]:
    """One line per protocol difference: theirs, then ours per task from the manifests."""
    p = PROTOCOLS[source]
    notes = [
        f"Protocol of {source}: {p.framework}; {p.model}; checkpoint chosen on {p.selection}; "
        f"{p.seeds}; {p.tasks}.",
        "Ours: checkpoint chosen on the dev split, test split only reported.",
        f"Average rows compare our 5-task mean with {source}'s own average only.",
    ]
    for (suite, our_scale, task), cfg in sorted(configs.items()):
        if suite != "lra" or our_scale != scale:
            continue
        train, data = cfg.get("train", {}), cfg.get("data", {})
        theirs = p.steps.get(task)
        notes.append(
            f"{task}: ours {train.get('steps')} steps x batch {train.get('batch_size')}, "
            f"length {data.get('max_len')}, {data.get('n_train')} training examples; "
            f"{source}: {theirs if theirs is not None else 'unstated'} steps."
        )
    return notes
