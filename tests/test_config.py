from __future__ import annotations

import pytest

from bench.config import (
    CellConfig,
    ConfigError,
    DataConfig,
    Scale,
    TrainConfig,
    apply_overrides,
    parse_override,
)

TASKS = ("listops", "text")


def test_override_is_typed_and_scoped() -> None:
    everywhere = parse_override("train.steps=50", TASKS)
    assert (everywhere.task, everywhere.key, everywhere.value) == (None, "train.steps", 50)
    one = parse_override("listops.train.lr=3e-4", TASKS)
    assert (one.task, one.value) == ("listops", 3e-4)

    scale = Scale("s", "test", CellConfig(), {"text": {"data.max_len": 4096}})
    listops = scale.resolve("listops", [everywhere, one])
    text = scale.resolve("text", [everywhere, one])
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
