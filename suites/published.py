"""Published results to compare against: the schema of `suites/lra/published.csv`, its loader,
and the protocol each source trained under.

One CSV row is one published figure: `source` (a key of PROTOCOLS), `paper`, `table`, the
paper's own `model` name, our `task` name (or `average`, or a claim's domain for `uoe-paper`),
`metric` (a key of METRICS: the unit is in the name, or is the figure's), `setting` (e.g.
`length=4K`, empty when none), `value`, `verified` (how the figure was checked against the
paper text: `paper-text`, a `transcription` of the paper, read off a `figure` (a plot:
approximate), or `no`), `verified_how` and `note`.

Imports only the standard library (not `suites.lra`, which loads torch), so `bench report`
stays light.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from models.errors import InputError

PUBLISHED_CSV = Path(__file__).parent / "lra" / "published.csv"
COLUMNS = (
    *("source", "paper", "table", "model", "task", "metric", "setting", "value", "verified"),
    *("verified_how", "note"),
)
VERIFIED = ("paper-text", "transcription", "figure", "no")
METRICS = {
    "accuracy_pct": "test accuracy, %",
    "train_steps_per_s": "training steps per second",
    "memory_peak_train_gb": "peak training memory per device, GB",
    "train_step_ms": "forward + backward time of one training step, ms",
    "average_gain_over_best_pct": "average LRA score minus the best comparison model's, points",
    "flops_ratio_to_best_moe": "FLOPs relative to the best MoE method",
    "perplexity_reduction_vs_best_moe": "perplexity below the best MoE method's",
    "accuracy_gain_over_best_pct": "accuracy minus the best comparison model's, points",
    "perplexity": "test perplexity, word level (lower is better)",
    "bits_per_byte": "test bits per byte (enwik8's bits per character; lower is better)",
}


@dataclass(frozen=True)
class Protocol:
    """How a source trained: what a reader must know before comparing a figure with ours."""

    name: str
    framework: str  # framework and hardware
    model: str  # model size as the source ran it
    steps: Mapping[str, int]  # training steps per task (absent: not stated)
    selection: str  # the split the reported checkpoint was chosen on
    seeds: str
    tasks: str  # task definitions that differ from ours


PROTOCOLS: dict[str, Protocol] = {
    "lra-jax": Protocol(
        "LRA official (Table 1)",
        "JAX/Flax, TPU",
        "per-task configs (appendix: ListOps 6x512, Pathfinder 4 layers FFN 128); repo "
        "configs differ from the appendix",
        {
            "listops": 5_000,
            "text": 20_000,
            "retrieval": 5_000,
            "image": 35_000,
            "pathfinder": 62_400,
        },
        "test (Text has no dev split; evaluated on test during training)",
        "1 run",
        "ListOps 2000 tokens; Text 1K-4K bytes; Retrieval AAN without its released text; "
        "Pathfinder-32 contour 14 from the released PNGs",
    ),
    "nystromformer": Protocol(
        "Nystromformer PyTorch re-run (Table 3)",
        "PyTorch, GPU, AMP",
        "2 layers, d 64, FFN 128, 2 heads, mean pooling, AdamW 1e-4",
        {
            "listops": 5_000,
            "text": 20_000,
            "retrieval": 30_000,
            "image": 35_000,
            "pathfinder": 62_400,
        },
        "test (dev = test split in its data preparation)",
        "1 run",
        "ListOps 2048 padded; Text 4K stated (its prep truncates to 1K); Retrieval uses the "
        "released AAN text; Pathfinder-32 contour 14, 62,400 steps",
    ),
    "skyformer": Protocol(
        "Skyformer PyTorch re-run (Table 1)",
        "PyTorch, one V100-16GB",
        "2 layers, d 64, FFN 128, 2 heads (Nystromformer protocol), 128 features everywhere",
        {t: 50_000 for t in ("listops", "text", "retrieval", "image", "pathfinder")},
        "test (best checkpoint after 20 % of training)",
        "mean of 3 seeds",
        "as Nystromformer's data preparation",
    ),
    "lra-efficiency": Protocol(
        "LRA efficiency (Table 2)",
        "JAX/Flax, TPU v3 4x4, memory per device",
        "Text-task Transformer, batch 32",
        {},
        "not applicable (speed and memory)",
        "1 run",
        "byte-level Text at lengths 1K-4K; only ratios to the Transformer compare across hardware",
    ),
    "uoe-paper": Protocol(
        "UoE paper headline claims (abstract)",
        "PyTorch, GPU (released LRA scripts)",
        "released LRA scripts: 2 layers, d 64, FFN 128, 2 heads",
        {},
        "test (the released code selects checkpoints on test)",
        "not stated",
        "FLOPs counted with calflops 0.3.2 on the released code (its experts baddbmm, its "
        "attention matmul)",
    ),
    "uoe-efficiency": Protocol(
        "UoE README efficiency figure (runtime and memory against length)",
        "PyTorch, one GPU (not named)",
        "not stated (likely the released LRA models: 2 layers, d 64); batch not stated",
        {},
        "not applicable (speed and memory)",
        "not stated",
        "forward + backward at lengths 64-4096; values read by eye off log-scale plots",
    ),
    "transformer-xl": Protocol(
        "Transformer-XL base, kimiyoung/transformer-xl pytorch/README.md",
        "PyTorch, 4 GPUs",
        "WikiText-103 base (run_wt103_base.sh): 16 layers, d 410, 10 heads x 41, d_inner 2100, "
        "adaptive softmax; enwik8 base (run_enwik8_base.sh): 12 layers",
        {"wikitext103": 200_000},
        "valid (the best-valid checkpoint is evaluated on test)",
        "1 run",
        "segment recurrence: training segments of 150 (WikiText-103) with 150 memory, "
        "evaluation segments of 64 with 640 memory (clamped at 400) and same-length attention, "
        "relative positions. We carry no memory and score non-overlapping segments of the "
        "training length with absolute positions, a full softmax, a linear schedule: our "
        "perplexity is higher for the same model, so only the order of models transfers",
    ),
}
# `--published` names that stand for several sources, each still reported on its own.
ALIASES = {"lra-pytorch": ("nystromformer", "skyformer")}

# Our model name -> the name each source gives the same mixer (dense FFN) model.
MODEL_NAMES: dict[str, dict[str, str]] = {
    "full_attention": {
        "lra-jax": "Transformer",
        "nystromformer": "Standard",
        "skyformer": "Self-Attention",
        "lra-efficiency": "Transformer",
    },
    "linformer": {
        s: "Linformer" for s in ("lra-jax", "nystromformer", "skyformer", "lra-efficiency")
    },
    "performer": {
        s: "Performer" for s in ("lra-jax", "nystromformer", "skyformer", "lra-efficiency")
    },
    # The UoE efficiency figure's models (uoe_paper is the released UoE it timed).
    "xmoe": {"uoe-efficiency": "XMoE"},
    "deepseek_moe": {"uoe-efficiency": "DeepSeek-MoE"},
    "skywork_moe": {"uoe-efficiency": "Skywork-MoE"},
    "deepseek_v3": {"uoe-efficiency": "DeepSeek V3"},
    "uoe_paper": {"uoe-efficiency": "UoE"},
}


@dataclass(frozen=True)
class PublishedResult:
    source: str
    paper: str
    table: str
    model: str
    task: str
    metric: str
    setting: str
    value: float
    verified: str
    verified_how: str
    note: str


def load_published(path: Path = PUBLISHED_CSV) -> list[PublishedResult]:
    """Every row of the published-results file, checked against the schema above."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(
                f"{path}: columns must be {', '.join(COLUMNS)}; got {reader.fieldnames}"
            )
        rows = []
        for line, raw in enumerate(reader, start=2):
            rows.append(_parse(raw, f"{path}:{line}"))
    seen: set[tuple[str, ...]] = set()
    for r in rows:
        key = (r.source, r.model, r.task, r.metric, r.setting)
        if key in seen:
            raise ValueError(f"{path}: duplicate figure {key}")
        seen.add(key)
    return rows


def figure_of(
    rows: Sequence[PublishedResult], model: str, task: str, metric: str, setting: str = ""
) -> PublishedResult | None:
    """The row of (model, task, metric, setting), or None when the source reports none."""
    for r in rows:
        if (r.model, r.task, r.metric, r.setting) == (model, task, metric, setting):
            return r
    return None


def _parse(raw: Mapping[str, str], where: str) -> PublishedResult:
    if raw["source"] not in PROTOCOLS:
        raise ValueError(f"{where}: unknown source {raw['source']!r}; add it to PROTOCOLS")
    if raw["metric"] not in METRICS:
        raise ValueError(f"{where}: unknown metric {raw['metric']!r}; one of {', '.join(METRICS)}")
    if raw["verified"] not in VERIFIED:
        raise ValueError(f"{where}: verified must be one of {', '.join(VERIFIED)}")
    for name in ("paper", "table", "model", "task", "verified_how"):
        if not raw[name].strip():
            raise ValueError(f"{where}: empty {name}")
    try:
        value = float(raw["value"])
    except ValueError:
        raise ValueError(f"{where}: value {raw['value']!r} is not a number") from None
    return PublishedResult(**{**raw, "value": value})


def expand_sources(names: Sequence[str]) -> tuple[str, ...]:
    """Source keys for `--published` names (aliases expanded), in order; unknown names raise."""
    out: list[str] = []
    for name in names:
        keys = ALIASES.get(name, (name,))
        for key in keys:
            if key not in PROTOCOLS:
                known = ", ".join([*PROTOCOLS, *ALIASES])
                raise InputError(f"unknown published source {name!r}; use one of {known}")
            out.append(key)
    return tuple(dict.fromkeys(out))
