"""`bench report --published SOURCE`: each measured figure beside the published one, with the
difference and the protocol differences that apply.

One table per (source, scale), never several sources in one table or one average: a source's
average is compared only with our average over the same five tasks (and only when every task
was measured). Accuracy sources (`lra-jax`, `nystromformer`, `skyformer`) compare test accuracy
per task; `lra-efficiency` compares speed and memory *ratios to full attention* at each length
(absolute TPU figures do not transfer); `uoe-paper` checks the abstract's LRA claims (average
gain over every other model, FLOPs relative to the best MoE, in both FLOP conventions) on the
models this run measured. Published figures come from `suites.published`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from statistics import mean

import pandas as pd

from bench.records import read_manifest
from bench.report.frame import Runs, metrics_frame, seed_summary
from bench.report.table import MISSING, Cell, Table
from suites.published import (
    MODEL_NAMES,
    PROTOCOLS,
    PublishedResult,
    expand_sources,
    load_published,
)

ACCURACY_SOURCES = ("lra-jax", "nystromformer", "skyformer")
LRA_TASKS = ("listops", "text", "retrieval", "image", "pathfinder")
MOE_MODELS = ("switch", "mixtral")
UOE_MODELS = ("uoe", "uoe_paper")
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
            built = _efficiency_tables(runs, rows)
        else:
            built = _uoe_tables(runs, rows)
        if not built:
            needs = (
                "all five LRA tasks for uoe or uoe_paper"
                if source == "uoe-paper"
                else "an ok record of a task it reports"
            )
            notes.append(f"published {source}: table omitted, the runs lack {needs}")
        tables += built
    return tables, notes


def _task_configs(run_dirs: Sequence[Path]) -> dict[tuple[str, str, str], dict]:
    """(suite, scale, task) -> the task's resolved config from the runs' manifests."""
    out: dict[tuple[str, str, str], dict] = {}
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        plan = manifest["plan"]
        for task, cfg in manifest.get("configs", {}).items():
            out[(plan["suite"], plan["scale"], task)] = cfg
    return out


def _figure(rows: Sequence[PublishedResult], model: str, task: str, metric: str, setting=""):
    for r in rows:
        if (r.model, r.task, r.metric, r.setting) == (model, task, metric, setting):
            return r
    return None


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
                figure = _figure(rows, theirs, task, "accuracy_pct") if theirs else None
                text = f"{100 * m:.2f}" + (f" ± {100 * sd:.2f}" if n > 1 else "")
                body.append(_row(model, theirs, task, text, int(n), 100 * m, figure, notes))
            if len(ours_by_task) == len(LRA_TASKS):
                figure = _figure(rows, theirs, "average", "accuracy_pct") if theirs else None
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


def _efficiency_tables(runs: Runs, rows) -> list[Table]:
    metrics = metrics_frame(runs.records)
    tables = []
    for (suite, scale), group in metrics.groupby(["suite", "scale"], sort=False):
        reference = runs.reference_model.get(suite, "full_attention")
        speed = _means(group, "train_steps_per_s")
        memory = _means(group, "memory_peak_train_bytes")
        body = []
        notes: set[str] = set()
        for (task, model), value in speed.items():
            theirs = MODEL_NAMES.get(model, {}).get("lra-efficiency")
            setting = f"length={task.upper()}"
            ours_speed = value / speed[(task, reference)] if (task, reference) in speed else None
            mem = memory.get((task, model))
            ref_mem = memory.get((task, reference))
            ours_mem = mem / ref_mem if mem is not None and ref_mem else None
            pub = [
                _ratio(rows, theirs, metric, setting)
                for metric in ("train_steps_per_s", "memory_peak_train_gb")
            ]
            if pub[0] is None and ours_speed is None:
                continue
            body.append(
                (
                    Cell(model),
                    Cell(task),
                    Cell(_fmt(ours_speed)),
                    Cell(_fmt(pub[0])),
                    Cell(_fmt(ours_mem)),
                    Cell(_fmt(pub[1])),
                )
            )
        if not any(row[3].text != MISSING for row in body):
            continue
        notes.add(
            f"Ratios to {reference} in the same run (ours) and to the Transformer in LRA "
            "Table 2 (TPU v3, batch 32, Text-task model); absolute figures do not transfer."
        )
        notes.add(f"Protocol of lra-efficiency: {PROTOCOLS['lra-efficiency'].tasks}.")
        tables.append(
            Table(
                f"published_lra-efficiency_{suite}_{scale}",
                f"Speed and memory relative to {reference} at scale {scale} beside LRA Table 2",
                ("model", "length", "ours speed ×", "LRA speed ×", "ours memory ×", "LRA memory ×"),
                tuple(body),
                tuple(sorted(notes)),
                label_columns=2,
            )
        )
    return tables


def _means(group: pd.DataFrame, metric: str) -> dict[tuple[str, str], float]:
    chosen = group[group.metric == metric]
    return {
        k: float(v)
        for k, v in chosen.groupby(["task", "model"], sort=False)["value"].mean().items()
    }


def _ratio(rows, theirs: str | None, metric: str, setting: str) -> float | None:
    if theirs is None:
        return None
    ours = _figure(rows, theirs, "text", metric, setting)
    base = _figure(rows, "Transformer", "text", metric, setting)
    return None if ours is None or base is None else ours.value / base.value


def _fmt(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def _uoe_tables(runs: Runs, rows) -> list[Table]:
    """The abstract's two LRA claims, evaluated on this run's complete 5-task rows."""
    metrics = metrics_frame(runs.records)
    lra = metrics[metrics.suite == "lra"]
    tables = []
    gain_claim = _figure(rows, "UoE", "lra", "average_gain_over_best_pct")
    flops_claim = _figure(rows, "UoE", "lra", "flops_ratio_to_best_moe")
    for scale, group in lra.groupby("scale", sort=False):
        acc = group[group.metric == "accuracy"].groupby(["model", "task"])["value"].mean()
        averages = {
            m: 100 * float(acc[m].mean())
            for m in dict.fromkeys(group.model)
            if m in acc.index.get_level_values(0) and set(acc[m].index) >= set(LRA_TASKS)
        }
        flops = {
            name: group[group.metric == name].groupby("model")["value"].mean()
            for name in ("flops_fwd_per_example", "flops_fwd_per_example_linear_only")
        }
        moes = [m for m in MOE_MODELS if m in averages]
        best_moe = max(moes, key=averages.get) if moes else None
        body = []
        for model in UOE_MODELS:
            if model not in averages:
                continue
            others = {m: v for m, v in averages.items() if m not in UOE_MODELS}
            gain = averages[model] - max(others.values()) if others else None
            ratios = [
                _flop_ratio(flops[name], model, best_moe)
                for name in ("flops_fwd_per_example", "flops_fwd_per_example_linear_only")
            ]
            body.append(
                (
                    Cell(model),
                    Cell(f"{averages[model]:.2f}"),
                    Cell(MISSING if gain is None else f"{gain:+.2f}"),
                    Cell(f">= +{gain_claim.value:.2f}" if gain_claim else MISSING),
                    Cell(best_moe or MISSING),
                    Cell(_fmt(ratios[0])),
                    Cell(_fmt(ratios[1])),
                    Cell(f"{flops_claim.value:.2f}" if flops_claim else MISSING),
                )
            )
        if not body:
            continue
        tables.append(
            Table(
                f"published_uoe-paper_{scale}",
                f"The UoE abstract's LRA claims checked at scale {scale}",
                (
                    "model",
                    "5-task average %",
                    "minus best other model",
                    "claimed",
                    "best MoE",
                    "FLOPs × best MoE (all matmuls)",
                    "FLOPs × best MoE (linear layers only)",
                    "claimed FLOPs ×",
                ),
                tuple(body),
                (
                    "Only rows with all five LRA tasks enter an average; the best other model "
                    "and the best MoE are taken among those rows.",
                    "The paper counted FLOPs with calflops, which sees F.linear only (the "
                    "'linear layers only' column); ours counts every matmul, attention included.",
                    f"Protocol of uoe-paper: {PROTOCOLS['uoe-paper'].selection}; "
                    "ours selects on dev.",
                ),
                label_columns=1,
            )
        )
    return tables


def _flop_ratio(values: pd.Series, model: str, best_moe: str | None) -> float | None:
    if best_moe is None or model not in values.index or best_moe not in values.index:
        return None
    return float(values[model] / values[best_moe])
