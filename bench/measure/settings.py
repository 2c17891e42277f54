"""`--set measure.FIELD=VALUE`: the latency sampling rules of a run (`LatencyConfig`: warmup,
min_count, min_time_s), set like every other setting, for every task or one
(`listops.measure.min_time_s=2`). They start from the scale's preset
(`bench.measure.cell.MEASURE_PRESETS`) and are recorded in the manifest."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from bench.measure.cell import MeasureConfig, preset
from bench.measure.latency import LatencyConfig
from suites.config import ConfigError

SECTION = "measure"


def measure_field(name: str) -> dataclasses.Field[Any]:
    """The LatencyConfig field behind `measure.NAME`; an unknown name lists the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(LatencyConfig)}
    if name not in fields:
        raise ConfigError(f"unknown field measure.{name}; measure fields: {', '.join(fields)}")
    return fields[name]


def measure_config(scale: str, overrides: Mapping[str, Any]) -> MeasureConfig:
    """The scale's preset with the task's `measure.*` overrides ({"measure.min_count": 5})."""
    base = preset(scale)
    changes = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(f"{SECTION}.")}
    if not changes:
        return base
    try:
        latency = dataclasses.replace(base.latency, **changes)
    except ValueError as exc:
        raise ConfigError(f"--set measure.*: {exc}") from None
    return dataclasses.replace(base, latency=latency)
