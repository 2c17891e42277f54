from __future__ import annotations

import pytest

from bench.config import for_task, parse_override
from suites.config import CellConfig, ConfigError, DataConfig, Scale, TrainConfig, apply_overrides

TASKS = ("listops", "text")


def test_override_is_typed_and_scoped() -> None:
    everywhere = parse_override("train.steps=50", TASKS)
    assert (everywhere.task, everywhere.key, everywhere.value) == (None, "train.steps", 50)
    one = parse_override("listops.train.lr=3e-4", TASKS)
    assert (one.task, one.value) == ("listops", 3e-4)

    scale = Scale("s", "test", CellConfig(), {"text": {"data.max_len": 4096}})
    listops = scale.resolve("listops", for_task([everywhere, one], "listops"))
    text = scale.resolve("text", for_task([everywhere, one], "text"))
    assert listops.train.steps == text.train.steps == 50
    assert listops.train.lr == 3e-4 and text.train.lr == TrainConfig().lr
    assert text.data.max_len == 4096 and listops.data.max_len == DataConfig().max_len


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train.stepz=5", "train fields: "),
        ("optim.lr=1", "unknown config section 'optim'"),
        ("train.steps=fast", "expected a value of type int"),
        ("pathfnder.train.steps=5", "unknown task 'pathfnder'"),
        ("steps", "expects key=value"),
    ],
)
def test_malformed_overrides_name_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_override(text, TASKS)


def test_scale_presets_are_checked_when_defined() -> None:
    with pytest.raises(ConfigError, match=r"unknown field data\.max_length"):
        Scale("bad", "typo", CellConfig(), {"listops": {"data.max_length": 10}})
    with pytest.raises(ConfigError, match="expected a value of type int"):
        apply_overrides(CellConfig(), {"train.steps": 2.5})


def test_configs_are_frozen() -> None:
    cfg = CellConfig()
    with pytest.raises(AttributeError):
        cfg.train.steps = 3  # type: ignore[misc]


# The released UoE LRA scripts (shared/reference/uoe.md §3.2):
# task: (max_len, batch, steps, warmup, weight decay, dropout, n_train, n_dev, n_test)
RELEASED_LRA_SCRIPTS = {
    "listops": (2048, 32, 15_000, 1_000, 0.0, 0.0, 96_000, 2_000, 2_000),
    # IMDB has no dev split: 10% of its 25k training reviews are carved off (our choice).
    "text": (4096, 16, 60_000, 8_000, 0.01, 0.1, 22_500, 2_500, 25_000),
    "retrieval": (4096, 8, 150_000, 8_000, 0.01, 0.1, 147_086, 17_437, 17_437),
    "image": (1024, 256, 30_000, 8_000, 0.0, 0.1, 45_000, 5_000, 10_000),
    "pathfinder": (1024, 256, 150_000, 8_000, 0.0, 0.1, 160_000, 20_000, 20_000),
}


@pytest.mark.parametrize("task", list(RELEASED_LRA_SCRIPTS))
def test_paper_scale_is_the_released_protocol(task: str) -> None:
    from bench import registries

    cfg = registries.SUITES.get("lra").scales["paper"].resolve(task)
    m, t, d = cfg.model, cfg.train, cfg.data
    assert (m.dim, m.depth, m.heads, m.ffn_dim, t.lr) == (64, 2, 2, 128, 1e-4)
    got = (d.max_len, t.batch_size, t.steps, t.warmup_steps, t.weight_decay, m.dropout,
           d.n_train, d.n_dev, d.n_test)  # fmt: skip
    assert got == RELEASED_LRA_SCRIPTS[task]
    assert m.attn_dropout == m.dropout


def test_every_scale_resolves_for_every_lra_task() -> None:
    from bench import registries

    suite = registries.SUITES.get("lra")
    for scale in suite.scales.values():
        for task in suite.tasks:
            cfg = scale.resolve(task)
            assert cfg.train.warmup_steps < cfg.train.steps
            assert cfg.model.dim % cfg.model.heads == 0
