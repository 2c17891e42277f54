"""`bench report --vs MODEL`: each model against MODEL, per task and on average over tasks: the
difference in accuracy points with its 95 % interval, the p-value raw and Holm-corrected across
the comparisons of the table, the probability of improvement, the seeds and the test used
(`bench.report.accuracy_stats`, `bench.report.stats`)."""

from __future__ import annotations

from bench.records import Record
from bench.report.accuracy_stats import average_comparison, cell_stats, compare
from bench.report.frame import Runs, model_label
from bench.report.stats import PairedComparison, holm, require_same_split
from bench.report.table import Cell, Table
from models.errors import InputError

NOTE = (
    "Difference = model - {ref} in accuracy points, 95 % percentile-bootstrap interval; p: "
    "two-sided, paired bootstrap over seeds x examples (exact McNemar at one seed each), "
    "p_Holm: Holm-corrected across the {m} comparisons of this table; P(A>B): the probability "
    "of improvement over (seed, seed) pairs, ties 1/2 (on average: its mean over tasks)."
)


def paired_tables(runs: Runs, reference: str) -> list[Table]:
    """One table per (suite, scale) with accuracy records; unknown `reference` raises."""
    models = runs.models()
    if reference not in models:
        raise InputError(
            f"--vs {reference}: no such model in these runs; present: {', '.join(models)}"
        )
    tables = []
    for suite, scale in dict.fromkeys((r.suite, r.scale) for r in runs.records):
        records = [r for r in runs.records if (r.suite, r.scale) == (suite, scale)]
        tasks = [t for t in runs.tasks(suite) if any(r.task == t for r in records)]
        rows: list[tuple[str, str, PairedComparison]] = []
        for model in (m for m in models if m != reference):
            per_task = []
            for task in tasks:
                a, b = _stats(records, model, task), _stats(records, reference, task)
                if a is None or b is None:
                    continue
                if a.predictions is not None and b.predictions is not None:
                    where = f"{model} vs {reference} on {task}"
                    require_same_split(
                        a.predictions[0].split_sha256, b.predictions[0].split_sha256, where
                    )
                result = compare(a, b)
                per_task.append(result)
                rows.append((model, task, result))
            if len(per_task) == len(tasks) > 1:
                rows.append((model, "average", average_comparison(per_task)))
        if not rows:
            continue
        adjusted = holm([r.p_value for _, _, r in rows])
        body = tuple(
            (
                Cell(model),
                Cell(task),
                Cell(f"{100 * r.difference:+.2f} [{100 * r.low:+.2f}, {100 * r.high:+.2f}]"),
                Cell(f"{r.p_value:.3f}"),
                Cell(f"{p_holm:.3f}"),
                Cell(f"{r.prob_improvement:.2f}"),
                Cell(f"{r.n_seeds_a}/{r.n_seeds_b}"),
                Cell(r.test),
            )
            for (model, task, r), p_holm in zip(rows, adjusted, strict=True)
        )
        headers = ("model", "task", "difference (points)", "p", "p_Holm", "P(A>B)", "seeds")
        tables.append(
            Table(
                f"paired_{suite}_{scale}_vs_{reference}",
                f"Accuracy against {reference} on {suite} at scale {scale}, paired",
                (*headers, "test"),
                body,
                (NOTE.format(ref=reference, m=len(rows)),),
                label_columns=2,
            )
        )
    return tables


def _stats(records: list[Record], model: str, task: str):
    return cell_stats([r for r in records if model_label(r) == model and r.task == task])
