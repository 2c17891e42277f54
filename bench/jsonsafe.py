"""JSON that every parser accepts: Python's `json` writes a non-finite float as a bare `NaN` /
`Infinity`, which is not JSON. `dumps_finite` writes them as the strings "NaN", "Infinity" and
"-Infinity" instead (results/README.md documents this for the manifest). Imports no torch."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every non-finite float (nested in dicts, lists, tuples) made a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps_finite(value: Any, **kwargs: Any) -> str:
    """json.dumps of `finite(value)`; never emits NaN or Infinity."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
