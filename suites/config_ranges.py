"""Range checks of a resolved cell config, run when a scale resolves a task's config (so bad
`--set` values are refused before any cell starts, with the field and its valid range). A
model's own fields are checked by their own class (`models.registry`), when the plan resolves.

Without them a negative batch size loops forever in the batch sampler and a zero batch size,
`eval_every` or split size fails deep inside training with `range() arg 3 must not be zero` or a
ZeroDivisionError.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from models.errors import InputError

# "section.field" -> (test, the valid range as the message states it)
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {}


def _rule(keys: str, test: Callable[[Any], bool], valid: str) -> None:
    for key in keys.split():
        _RULES[key] = (test, valid)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


_rule(
    "train.batch_size train.steps train.eval_every data.max_len data.n_train data.n_dev "
    "data.n_test model.dim model.depth model.heads model.ffn_dim model.experts model.top_k "
    "measure.min_count measure.profile_active",
    lambda v: v >= 1,
    "an integer >= 1",
)
_rule(
    "train.warmup_steps train.eval_examples data.seed measure.warmup measure.profile_wait "
    "measure.profile_warmup",
    lambda v: v >= 0,
    "an integer >= 0",
)
_rule("measure.min_time_s", lambda v: _finite(v) and v >= 0, "a finite number >= 0")
_rule(
    "train.time_budget_s", lambda v: _finite(v) and v >= 0, "a finite number >= 0 (0 = no budget)"
)
_rule("train.lr", lambda v: _finite(v) and v > 0, "a finite number > 0")
_rule(
    "train.weight_decay train.grad_clip model.balance_loss_weight",
    lambda v: _finite(v) and v >= 0,
    "a finite number >= 0 (grad_clip 0 = no clipping)",
)
_rule("model.capacity_factor", lambda v: _finite(v) and v > 0, "a finite number > 0")
_rule("model.dropout model.attn_dropout", lambda v: _finite(v) and 0 <= v <= 1, "in [0, 1]")


def check_ranges(cfg: Any, where: str = "") -> None:
    """Raise ValueError naming the first field of `cfg` (a CellConfig) outside its valid range,
    the range, and the `--set` that fixes it."""
    prefix = f"{where}: " if where else ""
    for key, (test, valid) in _RULES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not test(value):
            raise InputError(
                f"{prefix}{key}={value!r} is out of range: it must be {valid} "
                f"(set it with --set {key}=VALUE)"
            )
    model = cfg.model
    if model.dim % model.heads:
        raise InputError(
            f"{prefix}model.dim={model.dim} must be divisible by model.heads={model.heads}"
        )
    if model.top_k > model.experts:
        raise InputError(
            f"{prefix}model.top_k={model.top_k} must be in [1, model.experts={model.experts}]"
        )
