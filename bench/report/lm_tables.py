"""The language-modelling table of a report: models x tasks, each cell the task's test figure
(bits per byte for byte-level data, perplexity for word-level; lower is better: the catalog's
direction), mean over the seeds that finished, with the forward FLOPs per token beside it. Best
is bold (second underlined) only when a paired t-test over the test segments separates the two;
otherwise the lowest is marked `≈` and the notes give the p-value.

A model the causality probe caught seeing later tokens is marked `§` in every cell it leaked in
and is never ranked (its figure was scored with the answer in view); the notes say why, give the
evaluation protocol (segments, no memory) and each corpus's identity (name, Python version for
the stdlib corpus, test split hash), since a figure is comparable only on the same corpus.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

import numpy as np
from scipy import stats

from bench.records import Record
from bench.report.display import column_scale, header, number
from bench.report.frame import Runs, model_label
from bench.report.table import MISSING, Cell, Table

HEADLINES = ("test_bits_per_byte", "test_perplexity")
LEAK_MARK = " §"
UNJUDGED_MARK = " °"
UNJUDGED_NOTE = (
    "° the causality probe did not judge this cell (its record's causal_probe_error) ({}); "
    "not ranked."
)
SEPARABLE_P = 0.05
TIE_MARK = " ≈"
TIE_NOTE = (
    "≈ lowest mean, but not separable from the runner-up by the paired test at 5 % (so neither "
    "is bold): {}."
)
LEAK_NOTE = (
    "§ leaks the future: the causality probe saw an output at position t move when only tokens "
    "after t changed ({}); its figure is not a language-modelling result and is not ranked."
)


def _headline(record: Record) -> str | None:
    return next((h for h in HEADLINES if h in record.metrics), None)


def lm_tables(runs: Runs) -> list[Table]:
    """One table per (suite, scale) whose ok records carry a test bits/byte or perplexity."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in runs.records:
        if r.status == "ok" and _headline(r):
            groups[(r.suite, r.scale)].append(r)
    return [_table(runs, suite, scale, recs) for (suite, scale), recs in groups.items()]


def _table(runs: Runs, suite: str, scale: str, records: list[Record]) -> Table:
    tasks = [t for t in runs.tasks(suite) if any(r.task == t for r in records)]
    models = list(dict.fromkeys(model_label(r) for r in records))
    by_cell: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        by_cell[(model_label(r), r.task)].append(r)
    figure = {t: _headline(next(r for r in records if r.task == t)) for t in tasks}
    leaked: set[str] = set()
    ties: list[str] = []
    unjudged: set[str] = set()
    rows: dict[str, list[Cell]] = {m: [Cell(m)] for m in models}
    flops_scale = {}
    for task in tasks:
        metric = runs.catalog.get(figure[task])  # type: ignore[arg-type]
        flops = runs.catalog.get("flops_fwd_per_token")
        in_task = [r.metrics["flops_fwd_per_token"] for r in records if r.task == task
                   and "flops_fwd_per_token" in r.metrics]  # fmt: skip
        flops_scale[task] = column_scale(flops, in_task or [1.0])
        values: dict[str, float] = {}
        for model in models:
            mine = by_cell.get((model, task), [])
            seeds = [r.metrics[metric.name] for r in mine if metric.name in r.metrics]
            leaks = any(r.metrics.get("causal_leak") for r in mine)
            if not seeds:
                rows[model] += [Cell(MISSING), Cell(MISSING)]
                continue
            value = mean(seeds)
            text = number(metric, value)
            if leaks:
                leaked.add(f"{model} on {task}")
                text += LEAK_MARK
            elif all("causal_leak" in r.metrics for r in mine):  # probed and causal: ranked
                values[model] = value
            else:
                unjudged.add(f"{model} on {task}")
                text += UNJUDGED_MARK
            per_token = [
                r.metrics["flops_fwd_per_token"] for r in mine if "flops_fwd_per_token" in r.metrics
            ]
            rows[model] += [
                Cell(text, value if model in values else None),
                Cell(number(flops, mean(per_token), flops_scale[task]) if per_token else MISSING),
            ]
        ordered = sorted(values, key=values.get, reverse=metric.direction == "higher")  # type: ignore[arg-type]
        column = 1 + 2 * tasks.index(task)
        if len(ordered) > 1:
            first, second = ordered[:2]
            p = paired_p(by_cell[(first, task)], by_cell[(second, task)])
            if p is not None and p < SEPARABLE_P:
                for model, r in ((first, 1), (second, 2)):
                    cell = rows[model][column]
                    rows[model][column] = Cell(cell.text, cell.value, r)
            else:
                cell = rows[first][column]
                rows[first][column] = Cell(cell.text + TIE_MARK, cell.value)
                why = "no per-segment test losses" if p is None else f"p = {p:.2g}"
                ties.append(f"{first} vs {second} on {task} ({why})")
    headers = ["model"]
    for task in tasks:
        label = runs.catalog.get(figure[task]).label  # type: ignore[arg-type]
        per_token = header(runs.catalog.get("flops_fwd_per_token"), flops_scale[task])
        headers += [f"{task}: {label}", f"{task}: {per_token}"]
    notes = [
        "Lower is better; mean over the seeds that finished. Best (bold) and second "
        "(underlined) among the models the causality probe found causal, when a paired t-test "
        "over the test segments (each segment's loss, mean over seeds) separates them at 5 %."
    ]
    if ties:
        notes.append(TIE_NOTE.format("; ".join(ties)))
    notes += sorted(_protocols(records))
    notes += sorted(_corpora(records))
    if leaked:
        notes.append(LEAK_NOTE.format(", ".join(sorted(leaked))))
    if unjudged:
        notes.append(UNJUDGED_NOTE.format(", ".join(sorted(unjudged))))
    return Table(
        name=f"language_modelling_{suite}_{scale}",
        title=f"Language modelling on {suite} at scale {scale}",
        headers=tuple(headers),
        rows=tuple(tuple(rows[m]) for m in models),
        notes=tuple(notes),
    )


def paired_p(first: list[Record], second: list[Record]) -> float | None:
    """Two-sided p of a paired t-test between two cells' per-segment test losses (each the
    mean over the cell's seeds); None when either lacks them or the segments differ."""
    a, b = _segment_means(first), _segment_means(second)
    if a is None or b is None or len(a) != len(b) or len(a) < 2:
        return None
    if np.allclose(a, b, rtol=0, atol=0):
        return 1.0
    return float(stats.ttest_rel(a, b).pvalue)


def _segment_means(records: list[Record]) -> np.ndarray | None:
    runs = [r.metrics.get("test_segment_loss_nats") for r in records]
    if not runs or any(not isinstance(x, list) for x in runs) or len({len(x) for x in runs}) > 1:
        return None
    return np.mean(np.array(runs, dtype=float), axis=0)


def _protocols(records: list[Record]) -> set[str]:
    found = {(r.task, r.data.get("eval_protocol")) for r in records if r.data.get("eval_protocol")}
    return {f"Evaluation ({task}): {protocol}." for task, protocol in found}


def _corpora(records: list[Record]) -> set[str]:
    out = set()
    for r in records:
        corpus = r.data.get("corpus") or {}
        test = corpus.get("test") or {}
        digest = test.get("sha256") or corpus.get("sha256") or ""
        version = f", Python {corpus['python_version']}" if "python_version" in corpus else ""
        if corpus:
            out.add(f"Corpus ({r.task}): {corpus.get('name', '?')}{version}, test sha256 "
                    f"{digest[:16]}.")  # fmt: skip
    return out
