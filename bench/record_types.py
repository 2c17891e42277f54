"""The types of a record's fields as read from JSON, checked before a `Record` is built.

A line can be valid JSON and still not be a record: `"seed": "0"`, `"metrics": [1, 2]` or
`"accuracy": "high"` would reach the report, `bench compare` or the resume and crash them far
from the file. `check_types` raises ValueError naming the field and what it holds instead, so
the records scan treats the line as garbled: skipped with a warning naming the line, and moved
to the quarantine file on resume (`bench.records_scan`). A harness figure is checked against
its declared shape (`bench.metrics`); a suite's own figures only as JSON values. Imports no
torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.metrics import HARNESS_METRICS

_TEXT = ("run_id", "suite", "task", "model", "scale", "status", "reason", "measurement_error")
_TEXT_TOO = ("started_at", "variant")
_MAPPINGS = (
    *("metrics", "data", "artifacts", "variant_values", "placement", "config", "test_predictions"),
)
_SHAPES = {metric.name: metric.shape for metric in HARNESS_METRICS}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__} {value!r:.40}"


def check_types(raw: Mapping[str, Any]) -> None:
    """ValueError naming the first field of `raw` (a record's JSON object of the current schema)
    whose value has the wrong type. Absent fields are the dataclass's to refuse or default."""

    def bad(name: str, expected: str) -> ValueError:
        return ValueError(f"field {name!r} must be {expected}, got {_kind(raw[name])}")

    for name in (*_TEXT, *_TEXT_TOO):
        if name in raw and not isinstance(raw[name], str):
            raise bad(name, "text")
    for name in ("seed", "schema_version"):
        if name in raw and not _is_int(raw[name]):
            raise bad(name, "an integer")
    for name in ("params_total", "params_active"):
        if name in raw and raw[name] is not None and not _is_int(raw[name]):
            raise bad(name, "an integer or null")
    if "duration_s" in raw and not _is_number(raw["duration_s"]):
        raise bad("duration_s", "a number")
    if "routing" in raw and not isinstance(raw["routing"], list):
        raise bad("routing", "a list")
    for name in _MAPPINGS:
        if name in raw and not isinstance(raw[name], dict):
            raise bad(name, "a JSON object")
    for name, path in raw.get("artifacts", {}).items():
        if not isinstance(path, str):
            raise ValueError(f"artifact {name!r} must be a path (text), got {_kind(path)}")
    for section, fields in raw.get("config", {}).items():
        if not isinstance(fields, dict):
            raise ValueError(
                f"config section {section!r} must be a JSON object, got {_kind(fields)}"
            )
    for name, value in raw.get("metrics", {}).items():
        _check_metric(name, value)


def _check_metric(name: str, value: Any) -> None:
    shape = _SHAPES.get(name)
    if shape is None:  # a suite's own figure: its shape is in the run's manifest, not here
        return
    if shape == "scalar":
        ok = _is_number(value)
        expected = "a number"
    elif shape == "samples":
        ok = isinstance(value, list) and all(_is_number(v) for v in value)
        expected = "a list of numbers"
    elif shape == "curve":
        ok = isinstance(value, list) and all(
            _is_number(v) or (isinstance(v, list) and all(_is_number(x) for x in v)) for v in value
        )
        expected = "a list of numbers or of [step, value] pairs"
    elif shape == "mapping":
        ok = isinstance(value, dict)
        expected = "a JSON object"
    else:  # text: a sentence or a list of names
        ok = isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        expected = "text or a list of names"
    if not ok:
        raise ValueError(f"figure {name!r} must be {expected}, got {_kind(value)}")
