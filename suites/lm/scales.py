"""The language-modelling scale presets.

paper: the released UoE WikiText-103 recipe (Transformer-XL base code, shared/reference/uoe.md
  3.3): 16 layers, d 400, 10 heads (UoE: 10 head-experts, top 5), d_inner 2100 (4 FFN experts,
  top 2, capacity 1.0), dropout 0.1, segment 150, batch 60, 200,000 steps, lr 2.5e-4, weight
  decay 0.01, clipping 0.25. Protocol
  differences (stated in every record's `eval_protocol` and the published-figures notes): no
  Transformer-XL segment recurrence (no memory: each segment is scored alone, so its first
  positions see little context, which raises the loss), evaluation on non-overlapping segments of
  the training length (the release: tgt 64 with 640 memory), a full softmax (the release: an
  adaptive softmax with cutoffs 20k/40k/200k), and the harness's linear warmup-then-decay schedule
  (the release: cosine to zero, AdamW with amsgrad).
small: minutes per model on a laptop CPU: d 128, 4 layers, segment 128.
tiny: the whole suite for every model in a few minutes on 2 CPU cores: d 32, 2 layers, segment
  64, 60 steps; enough to separate a model that learns from one that does not, and to run the
  causality probe on every cell.

The split sizes are caps on the number of segments (the corpora are cut from their start);
`very large` caps take the whole split.
"""

from __future__ import annotations

from models.config import ModelConfig
from suites.config import (
    MEASURE_PAPER,
    MEASURE_SMALL,
    MEASURE_TINY,
    CellConfig,
    DataConfig,
    Scale,
    TrainConfig,
)

WHOLE_SPLIT = 1_000_000_000  # a segment cap no corpus reaches

# Models' own fields (suites/model_fields.py): Linformer's k, the Performers' features per head.
_TINY_OWN = {"proj_len": 16, "random_features": 32}

TINY = Scale(
    name="tiny",
    description="the whole suite in a few minutes on 2 cores: d 32, 2 layers, segment 64",
    base=CellConfig(
        model=ModelConfig(dim=32, depth=2, heads=2, ffn_dim=64, experts=4, top_k=2),
        train=TrainConfig(
            batch_size=16,
            steps=60,
            warmup_steps=6,
            lr=3e-3,
            weight_decay=0.01,
            eval_every=30,
            eval_examples=0,
        ),
        data=DataConfig(max_len=64, n_train=2_048, n_dev=32, n_test=64),
        measure=MEASURE_TINY,
    ),
    model_own=_TINY_OWN,
)

SMALL = Scale(
    name="small",
    description="minutes per model: d 128, 4 layers, 4 heads, segment 128, 1000 steps",
    base=CellConfig(
        model=ModelConfig(dim=128, depth=4, heads=4, ffn_dim=512, experts=4, top_k=2),
        train=TrainConfig(
            batch_size=32,
            steps=1_000,
            warmup_steps=100,
            lr=1e-3,
            weight_decay=0.01,
            eval_every=250,
            eval_examples=0,
        ),
        data=DataConfig(max_len=128, n_train=20_000, n_dev=256, n_test=512),
        measure=MEASURE_SMALL,
    ),
    model_own={"proj_len": 64, "random_features": 64},
)

PAPER = Scale(
    name="paper",
    description="released UoE WikiText-103 recipe: 16 layers, d 400, 10 heads, d_inner 2100",
    base=CellConfig(
        model=ModelConfig(
            dim=400,
            depth=16,
            heads=10,
            ffn_dim=2100,
            dropout=0.1,
            attn_dropout=0.0,
            experts=4,
            top_k=2,
            capacity_factor=1.0,  # the release's capacity 1.0: L * top_k / experts = L / 2
        ),
        train=TrainConfig(
            batch_size=60,
            steps=200_000,
            warmup_steps=0,
            lr=2.5e-4,
            weight_decay=0.01,
            grad_clip=0.25,
            eval_every=4_000,
            eval_examples=0,
        ),
        data=DataConfig(max_len=150, n_train=WHOLE_SPLIT, n_dev=WHOLE_SPLIT, n_test=WHOLE_SPLIT),
        measure=MEASURE_PAPER,
    ),
    # the release's attention: 10 head-experts, top n_head // 2
    model_own={"attn_top_k": 5, "proj_len": 64, "random_features": 128},
)

LM_SCALES = {s.name: s for s in (TINY, SMALL, PAPER)}
