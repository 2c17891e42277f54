"""`bench report --published` for language modelling: our test perplexity (WikiText-103) or bits
per byte (enwik8) beside Transformer-XL base's (`transformer-xl`), and the UoE abstract's LM claim
(`uoe-paper`: perplexity below the best MoE's at a fraction of its FLOPs) evaluated on the models
this run measured.

A model the causality probe caught leaking is shown marked and is never the "best MoE" nor a
UoE figure the claim is checked on: its perplexity was scored with later tokens in view. The
protocol differences (segment recurrence, evaluation segments, softmax, schedule) are stated
beside every table: only the order of models transfers, not the absolute figure.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from bench.records import Record
from bench.report.frame import Runs
from bench.report.lm_tables import LEAK_MARK, LEAK_NOTE
from bench.report.published_claims import MOE_MODELS, UOE_MODELS
from bench.report.table import MISSING, Cell, Table
from suites.published import PROTOCOLS, PublishedResult, figure_of

# UoE's variants the LM claim is checked on: its causal variant first (uoe and its patch/sample
# routings have no causal form; uoe_paper keeps the released segment-wide routing, which leaks)
UOE_LM_MODELS = ("uoe_causal", *UOE_MODELS)
# our task -> (our figure, the published metric)
LM_TASKS = {
    "wikitext103": ("test_perplexity", "perplexity"),
    "enwik8": ("test_bits_per_byte", "bits_per_byte"),
}
OURS_NOTE = (
    "Ours: no memory between segments, non-overlapping evaluation segments of the training "
    "length (the record's eval_protocol), full softmax, linear warmup then decay, weights chosen "
    "on valid, test reported once."
)


def _means(runs: Runs, task: str, figure: str) -> dict[str, dict[str, tuple[float, int, bool]]]:
    """scale -> model -> (mean over ok seeds, seeds, leaks) of `figure` on `task`."""
    found: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in runs.records:
        if r.suite == "lm" and r.task == task and r.status == "ok" and figure in r.metrics:
            found[(r.scale, r.model)].append(r)
    out: dict[str, dict[str, tuple[float, int, bool]]] = defaultdict(dict)
    for (scale, model), recs in found.items():
        leaks = any(r.metrics.get("causal_leak") for r in recs)
        out[scale][model] = (mean(r.metrics[figure] for r in recs), len(recs), leaks)
    return out


def transformer_xl_tables(runs: Runs, rows: list[PublishedResult]) -> list[Table]:
    """Each model's WikiText-103 perplexity / enwik8 bits per byte beside Transformer-XL base."""
    by_scale: dict[str, list[tuple[Cell, ...]]] = defaultdict(list)
    leaked: dict[str, set[str]] = defaultdict(set)
    for task, (figure, metric) in LM_TASKS.items():
        theirs = figure_of(rows, "Transformer-XL base", task, metric)
        for scale, models in _means(runs, task, figure).items():
            for model, (value, seeds, leaks) in models.items():
                text = f"{value:.2f}" + (LEAK_MARK if leaks else "")
                if leaks:
                    leaked[scale].add(f"{model} on {task}")
                diff = MISSING if theirs is None or leaks else f"{value - theirs.value:+.2f}"
                by_scale[scale].append(
                    (Cell(model), Cell(task), Cell(metric.replace("_", " ")), Cell(text),
                     Cell(str(seeds)), Cell(f"{theirs.value:.2f}" if theirs else MISSING),
                     Cell(diff))
                )  # fmt: skip
    p = PROTOCOLS["transformer-xl"]
    tables = []
    for scale, body in by_scale.items():
        notes = [
            f"Protocol of transformer-xl: {p.framework}; {p.model}; checkpoint chosen on "
            f"{p.selection}; {p.seeds}; {p.tasks}.",
            OURS_NOTE,
        ]
        if leaked[scale]:
            notes.append(LEAK_NOTE.format(", ".join(sorted(leaked[scale]))))
        tables.append(
            Table(
                f"published_transformer-xl_{scale}",
                f"Language modelling at scale {scale} beside {p.name}",
                (
                    "model",
                    "task",
                    "figure",
                    "ours",
                    "seeds",
                    "Transformer-XL base",
                    "ours - published",
                ),
                tuple(body),
                tuple(notes),
                label_columns=3,
            )
        )
    return tables


def uoe_lm_tables(runs: Runs, rows: list[PublishedResult]) -> list[Table]:
    """The abstract's LM claim on WikiText-103: UoE's perplexity minus the best causal MoE's,
    and its forward FLOPs per token relative to that MoE's."""
    gain = figure_of(rows, "UoE", "language_modeling", "perplexity_reduction_vs_best_moe",
                     "WikiText-103 and One Billion Word")  # fmt: skip
    ratio = figure_of(rows, "UoE", "language_modeling", "flops_ratio_to_best_moe",
                      "WikiText-103 and One Billion Word")  # fmt: skip
    ppl = _means(runs, "wikitext103", "test_perplexity")
    flops = _means(runs, "wikitext103", "flops_fwd_per_token")
    tables = []
    for scale, models in ppl.items():
        causal_moes = {m: v for m, (v, _, leaks) in models.items() if m in MOE_MODELS and not leaks}
        best = min(causal_moes, key=causal_moes.get) if causal_moes else None  # type: ignore[arg-type]
        body = []
        leaked = []
        for model in UOE_LM_MODELS:
            if model not in models:
                continue
            value, _, leaks = models[model]
            if leaks:
                leaked.append(f"{model} on wikitext103")
            below = None if best is None or leaks else causal_moes[best] - value
            fl = flops.get(scale, {})
            share = fl[model][0] / fl[best][0] if best and model in fl and best in fl else None
            body.append(
                (Cell(model), Cell(f"{value:.2f}" + (LEAK_MARK if leaks else "")),
                 Cell(best or MISSING), Cell(MISSING if below is None else f"{below:+.2f}"),
                 Cell(f">= {gain.value:.2f}" if gain else MISSING),
                 Cell(MISSING if share is None or leaks else f"{share:.2f}"),
                 Cell(f"{ratio.value:.2f}" if ratio else MISSING))
            )  # fmt: skip
        if not body:
            continue
        notes = [
            "The claim (UoE paper abstract) averages WikiText-103 and One Billion Word; this "
            "table has WikiText-103 only. Best MoE: the lowest perplexity among "
            f"{', '.join(MOE_MODELS)} that the causality probe found causal.",
            OURS_NOTE,
        ]
        if leaked:
            notes.append(LEAK_NOTE.format(", ".join(leaked)))
        tables.append(
            Table(
                f"published_uoe-paper_lm_{scale}",
                f"UoE's language-modelling claim on WikiText-103 at scale {scale}",
                (
                    "model",
                    "test perplexity",
                    "best MoE",
                    "perplexity below it",
                    "claimed",
                    "FLOPs / best MoE's",
                    "claimed",
                ),
                tuple(body),
                tuple(notes),
            )
        )
    return tables
