"""The smoke suite's scale presets: tiny (CI: seconds per model) and small (a clearer signal).

The MoE fields and the efficient-attention models' own fields are set for short sequences:
Linformer projects to fewer positions than max_len and Performer uses few random features, so
every registered model builds.
"""

from __future__ import annotations

from models.config import ModelConfig
from suites.config import MEASURE_SMALL, MEASURE_TINY, CellConfig, DataConfig, Scale, TrainConfig

_MODEL = ModelConfig(
    dim=32,
    depth=2,
    heads=2,
    ffn_dim=64,
    dropout=0.0,
    attn_dropout=0.0,
    experts=4,
    top_k=2,
)
# Models' own fields (suites/model_fields.py): Linformer's k, the Performers' features per head.
_MODEL_OWN = {"proj_len": 16, "random_features": 32}

TINY = Scale(
    name="tiny",
    description="CI: seconds per model; d 32, 2 layers, length 32, 80 steps",
    base=CellConfig(
        model=_MODEL,
        train=TrainConfig(
            batch_size=32,
            steps=80,
            warmup_steps=8,
            lr=3e-3,
            weight_decay=0.01,
            eval_every=40,
            eval_examples=0,
        ),
        data=DataConfig(max_len=32, n_train=1_024, n_dev=128, n_test=256),
        measure=MEASURE_TINY,
    ),
    model_own=_MODEL_OWN,
)

SMALL = Scale(
    name="small",
    description="about a minute per model; d 32, 2 layers, length 64, 400 steps",
    base=CellConfig(
        model=_MODEL,
        train=TrainConfig(
            batch_size=32,
            steps=400,
            warmup_steps=40,
            lr=2e-3,
            weight_decay=0.01,
            eval_every=100,
            eval_examples=0,
        ),
        data=DataConfig(max_len=64, n_train=4_096, n_dev=256, n_test=512),
        measure=MEASURE_SMALL,
    ),
    model_own=_MODEL_OWN,
)

SMOKE_SCALES = {s.name: s for s in (TINY, SMALL)}
