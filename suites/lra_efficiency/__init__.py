"""The LRA efficiency table (Tay et al. 2021, Table 2), re-measured: training steps per second and
peak memory of every model on byte-level inputs of four lengths, each also relative to full
attention measured in the same run; and the UoE paper's efficiency figure (its README's runtime
and memory curves) at its seven lengths, for the MoEs it plots.

LRA measured the byte-level Text model at 1K/2K/3K/4K tokens, batch 32. Here the inputs are
uniform random bytes at full length (speed and memory do not depend on the text; no data to
download, no accuracy), and the model is this harness's shared encoder at the scale's size.
Tasks are named by their paper length; `tiny` and `small` shrink every length and the batch
(records keep the real `data.max_len`):

    scale   lengths (tasks 1k, 2k, 3k, 4k)   batch   model
    tiny    256, 512, 768, 1024              4       d 32, 2 layers, FFN 64
    small   512, 1024, 1536, 2048            8       d 64, 2 layers, FFN 128
    paper   1024, 2048, 3072, 4096           32      d 64, 2 layers, FFN 128 (the UoE LRA model)

The UoE README plots forward + backward runtime and memory against length 64-4096 for XMoE,
DeepSeek-MoE, Skywork-MoE, DeepSeek V3 and UoE (shared/reference/uoe.md; its read-off values
are the `uoe-efficiency` rows of suites/lra/published.csv). Two scales run those models
(`xmoe`, `deepseek_moe`, `skywork_moe`, `deepseek_v3`, `uoe_paper`, the released UoE) at the
real lengths, on the UoE LRA model (the README does not say which model or batch it timed;
the LRA one is the likeliest):

    scale     tasks (= lengths)                          batch
    uoe       64, 128, 256, 512, 1k, 2k, 4k (to 4096)    32     a GPU: the figure's lengths
    uoe_cpu   64, 128, 256, 512, 1k (to 1024)            4      minutes on 2 CPU cores

`bench report --published uoe-efficiency` sets each model's time and memory relative to
uoe_paper in the same run beside the figure's (each model / UoE at the same length).
"""

from __future__ import annotations

import torch

from models.config import ModelConfig
from suites.config import (
    MEASURE_PAPER,
    MEASURE_SMALL,
    MEASURE_TINY,
    CellConfig,
    DataConfig,
    MeasureConfig,
    Scale,
    TrainConfig,
)
from suites.data import DataRequest, Split, TaskData
from suites.registry import register_suite
from suites.spec import SuiteSpec, TaskSpec

BYTE_VOCAB = 257  # bytes 1..256, 0 = padding
PAPER_LENGTHS = {"1k": 1024, "2k": 2048, "3k": 3072, "4k": 4096}
# The UoE README's efficiency figure: task -> length (the real one at the uoe scales).
UOE_LENGTHS = {"64": 64, "128": 128, "256": 256, "512": 512, "1k": 1024, "2k": 2048, "4k": 4096}
UOE_CPU_TASKS = ("64", "128", "256", "512", "1k")
# The models of the figure, by our names; uoe_paper is the released UoE the figure timed.
UOE_FIGURE_MODELS = ("xmoe", "deepseek_moe", "skywork_moe", "deepseek_v3", "uoe_paper")
TASK_LENGTHS = {**UOE_LENGTHS, **PAPER_LENGTHS}  # every task, by its length at paper scale


def random_bytes(request: DataRequest) -> TaskData:
    """Uniform random bytes at exactly max_len (no padding) with random binary labels."""
    generator = torch.Generator().manual_seed(request.seed)

    def split(n: int) -> Split:
        tokens = torch.randint(1, BYTE_VOCAB, (n, request.max_len), generator=generator)
        lengths = torch.full((n,), request.max_len, dtype=torch.int64)
        return Split((tokens,), (lengths,), torch.randint(0, 2, (n,), generator=generator))

    return TaskData(
        split(request.n_train),
        split(request.n_dev),
        split(request.n_test),
        source=f"synthetic uniform random bytes, length {request.max_len}, seed {request.seed}",
    )


def _scale(
    name: str,
    description: str,
    model: ModelConfig,
    batch: int,
    divisor: int,
    measure: MeasureConfig,
) -> Scale:
    return Scale(
        name=name,
        description=description,
        base=CellConfig(
            model=model,
            # Only the step is timed: lr and clipping as in training, nothing runs to convergence.
            train=TrainConfig(batch_size=batch, steps=1, warmup_steps=0, lr=1e-4, grad_clip=1.0),
            data=DataConfig(max_len=1024, n_train=batch, n_dev=batch, n_test=batch),
            measure=measure,
        ),
        per_task={task: {"data.max_len": n // divisor} for task, n in PAPER_LENGTHS.items()},
        tasks=tuple(PAPER_LENGTHS),
    )


def _uoe_scale(name: str, description: str, tasks: tuple[str, ...], batch: int, measure) -> Scale:
    """The UoE figure's models at the real lengths of `tasks`, on the UoE LRA model."""
    return Scale(
        name=name,
        description=description,
        base=CellConfig(
            model=_PAPER_MODEL,
            train=TrainConfig(batch_size=batch, steps=1, warmup_steps=0, lr=1e-4, grad_clip=1.0),
            data=DataConfig(max_len=1024, n_train=batch, n_dev=batch, n_test=batch),
            measure=measure,
        ),
        per_task={task: {"data.max_len": UOE_LENGTHS[task]} for task in tasks},
        tasks=tasks,
        models=UOE_FIGURE_MODELS,
    )


_SMALL_MODEL = ModelConfig(dim=64, depth=2, heads=2, ffn_dim=128, dropout=0.0, attn_dropout=0.0)
_PAPER_MODEL = ModelConfig(dim=64, depth=2, heads=2, ffn_dim=128, dropout=0.1, attn_dropout=0.1)
SCALES = {
    "tiny": _scale(
        "tiny",
        "lengths 256-1024, batch 4, d 32: seconds per model on 2 CPU cores",
        ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64, dropout=0.0, attn_dropout=0.0),
        batch=4,
        divisor=4,
        measure=MEASURE_TINY,
    ),
    "small": _scale(
        "small",
        "lengths 512-2048, batch 8, d 64",
        _SMALL_MODEL,
        batch=8,
        divisor=2,
        measure=MEASURE_SMALL,
    ),
    "paper": _scale(
        "paper",
        "LRA Table 2: lengths 1K-4K, batch 32; the UoE LRA model (d 64, 2 layers, FFN 128)",
        _PAPER_MODEL,
        batch=32,
        divisor=1,
        measure=MEASURE_PAPER,
    ),
    "uoe": _uoe_scale(
        "uoe",
        "the UoE README's efficiency figure: its 5 MoEs at lengths 64-4096, batch 32 (a GPU)",
        tuple(UOE_LENGTHS),
        batch=32,
        measure=MEASURE_PAPER,
    ),
    "uoe_cpu": _uoe_scale(
        "uoe_cpu",
        "the UoE efficiency figure's 5 MoEs at lengths 64-1024, batch 4: minutes on 2 CPU cores",
        UOE_CPU_TASKS,
        batch=4,
        measure=MEASURE_TINY,
    ),
}

TASKS = [
    TaskSpec(
        task,
        "lra_efficiency",
        f"random bytes, {n} tokens at paper scale (training speed and memory only)",
        num_classes=2,
        vocab_size=BYTE_VOCAB,
        num_inputs=1,
        load=random_bytes,
    )
    for task, n in sorted(TASK_LENGTHS.items(), key=lambda item: item[1])
]

register_suite(
    SuiteSpec(
        name="lra_efficiency",
        description="LRA efficiency: steps/s, peak memory at 1K-4K bytes, ratios to full "
        "attention; the UoE efficiency figure at 64-4096 (scales uoe, uoe_cpu)",
        tasks=tuple(t.name for t in TASKS),
        scales=SCALES,
        kind="efficiency",
    ),
    TASKS,
)
