"""What one figure of a record means: its unit, which way is better, what kind of quantity it is
and how to show it. The harness declares its own figures in `bench.metrics`; a suite declares
the figures only its cells write in `SuiteSpec.metrics` (this module imports nothing heavy, so a
suite package and the light report side can both use it).

Kinds, which decide how `bench compare` gates a figure:
- `deterministic`: the same number whenever the cell runs again at the same seed and thread
  count (parameters, FLOPs, the best step): compared exactly.
- `seeded`: an outcome of training that varies with the seed and, at a fixed seed, moves only by
  float reordering across CPUs (accuracy, loss): compared within a tolerance.
- `timing`: seconds or rates measured on the machine: compared within the stored spread.
- `memory`: a peak memory reading: compared against a factor of the base.
- `environment`: a fact about the machine or the measurement (load, method): never gated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["higher", "lower", "neither"]
Kind = Literal["deterministic", "seeded", "timing", "memory", "environment"]
# How a value is held: one number; a list of raw samples; a curve of (step, value) or per-interval
# values; a mapping of names to numbers or text; free text or a list of names.
Shape = Literal["scalar", "samples", "curve", "mapping", "text"]
# How a number is shown: a percentage of a fraction (`digits` decimals); an SI prefix on the unit
# (3.2 MFLOP, 12 ms; `digits` significant digits); a plain number (`digits` significant digits,
# never an exponent); a whole number with thousands separators.
Style = Literal["percent", "si", "number", "integer"]

DIRECTIONS: tuple[str, ...] = ("higher", "lower", "neither")
KINDS: tuple[str, ...] = ("deterministic", "seeded", "timing", "memory", "environment")
SHAPES: tuple[str, ...] = ("scalar", "samples", "curve", "mapping", "text")
STYLES: tuple[str, ...] = ("percent", "si", "number", "integer")


@dataclass(frozen=True)
class Display:
    """style (see `Style`) and its digits: decimals for percent, significant digits otherwise."""

    style: Style = "number"
    digits: int = 3

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"display style {self.style!r} is not one of {', '.join(STYLES)}")


@dataclass(frozen=True)
class Metric:
    """One figure a record can carry.

    name: the key in a record's `metrics` (or `params_total` / `params_active`).
    label: a short human name for table headers and plot axes ("test accuracy").
    unit: the SI unit the value is stored in ("s", "1/s", "B", "FLOP", "fraction", "nats",
        "count", "step"; "" for text and mappings).
    direction: which way is better, for rankings, regressions and improvements.
    group: what the figure is about ("accuracy", "training", "parameters", "flops", "latency",
        "throughput", "memory", "machine", "diagnostics"); tables and summaries group by it.
    samples: for a timing, the figure holding its raw samples (its spread); `inverse_samples`
        when the figure is a rate, 1 / the sampled seconds.
    gated: False for a figure compared but never failed on (a p90 tail).
    load_steady: a timing that other work on the machine barely moves (process CPU time, not
        wall time): its ratio to a reference model is gated on a busy machine too.
    cost: a column of the report's cost table (size, FLOPs, latency, memory of a model).
    replaced_by: for a figure no longer written, the one newer records carry instead (a
        different figure, so it is never read as this one); `bench compare` does not count it
        missing from a record that has its replacement.
    """

    name: str
    label: str
    unit: str
    direction: Direction
    kind: Kind
    group: str
    description: str
    display: Display = Display()
    shape: Shape = "scalar"
    samples: str = ""
    inverse_samples: bool = False
    gated: bool = True
    cost: bool = False
    replaced_by: str = ""
    load_steady: bool = False

    def __post_init__(self) -> None:
        for field, value, allowed in (
            ("direction", self.direction, DIRECTIONS),
            ("kind", self.kind, KINDS),
            ("shape", self.shape, SHAPES),
        ):
            if value not in allowed:
                raise ValueError(
                    f"metric {self.name!r}: {field} {value!r} is not one of {', '.join(allowed)}"
                )
        if not self.description.strip() or not self.label.strip():
            raise ValueError(f"metric {self.name!r} needs a label and a one-line description")

    def to_dict(self) -> dict[str, object]:
        """The JSON form a manifest stores for a suite's own figures (`from_dict` reads it)."""
        return {
            **{k: v for k, v in self.__dict__.items() if k != "display"},
            "display": {"style": self.display.style, "digits": self.display.digits},
        }

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Metric:
        display = raw.get("display") or {}
        if not isinstance(display, dict):
            raise ValueError(f"metric {raw.get('name')!r}: display must be an object")
        return cls(**{**raw, "display": Display(**display)})  # type: ignore[arg-type]
