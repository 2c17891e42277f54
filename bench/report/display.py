"""Numbers as people read them, by the catalog's display of each figure: a percentage, an SI
prefix on the unit (3.2 MFLOP, 12 ms, 1.3 MB), a plain number, a whole count. Tables, plot axes
and `bench compare` format through here, so a figure reads the same everywhere.

A column (or an axis) takes one scale for all its values: `column_scale` picks the prefix that
puts the largest value in [1, 1000).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from suites.metric import Metric

PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"))
PERCENT_UNIT = "%"


@dataclass(frozen=True)
class Scale:
    """Divide a stored value by `divisor` to show it in `unit` (`unit` may be "")."""

    divisor: float
    unit: str


def si_scale(values: Iterable[float], unit: str) -> Scale:
    """The prefix that puts the largest finite |value| in [1, 1000) (3e-2 GFLOP reads as 30
    MFLOP); a unit written as `1/...` or without a symbol takes no prefix."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=1.0)
    if not unit or unit.startswith("1/") or top == 0:
        return Scale(1.0, unit)
    divisor, prefix = next(((f, p) for f, p in PREFIXES if top >= f), PREFIXES[-1])
    return Scale(divisor, f"{prefix}{unit}")


def column_scale(metric: Metric, values: Iterable[float]) -> Scale:
    """How a column (or an axis) of `metric` shows its values."""
    style = metric.display.style
    if style == "percent":
        return Scale(0.01, PERCENT_UNIT)
    if style == "si":
        return si_scale(values, metric.unit)
    # a count needs no unit, and a rate's label already says "/s"
    plain = metric.unit in ("count", "step") or metric.unit.startswith("1/")
    return Scale(1.0, "" if plain else metric.unit)


def number(metric: Metric, value: float, scale: Scale | None = None) -> str:
    """`value` (stored SI) as text in `scale` (default: the value's own), without the unit."""
    scale = scale or column_scale(metric, [value])
    shown = value / scale.divisor
    digits = metric.display.digits
    style = metric.display.style
    if style == "percent":
        return f"{shown:.{digits}f}"
    if style == "integer":
        return f"{round(shown):,}"
    return significant(shown, digits)


def significant(value: float, digits: int) -> str:
    """`digits` significant digits without trailing zeros, and no exponent for a large number
    (2234.04 -> 2234, 0.0012345 -> 0.00123, 2.0 -> 2)."""
    text = f"{value:.{digits}g}"
    if "e+" in text:
        return f"{value:.0f}"
    return text


def with_unit(metric: Metric, value: float) -> str:
    """`value` with its unit, e.g. '1.26 MB', '34.37 %', '110,474'."""
    scale = column_scale(metric, [value])
    text = number(metric, value, scale)
    return f"{text} {scale.unit}" if scale.unit else text


def capitalized(text: str) -> str:
    """`text` with its first letter upper case and the rest as written (units keep their case:
    'Peak training memory (MB)', where str.capitalize would write 'mb')."""
    return text[:1].upper() + text[1:]


def header(metric: Metric, scale: Scale) -> str:
    """A column header or axis label: the figure's label and its unit, 'test accuracy (%)'."""
    return f"{metric.label} ({scale.unit})" if scale.unit else metric.label
