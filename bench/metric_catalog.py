"""The catalog of figures: the harness's own (`bench.metrics`) plus those a suite declares
(`SuiteSpec.metrics`, stored in each run's manifest so that a report reads them without
importing the suite). Looking up a figure that no entry declares raises `UnknownMetric` naming
the nearest names; `markdown_table()` is the generated figure list of `results/README.md`.

Imports nothing heavy: the report side reads it without torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bench.metrics import HARNESS_METRICS
from suites.metric import Metric

CATALOG_BEGIN = "<!-- metric-catalog:begin -->"
CATALOG_END = "<!-- metric-catalog:end -->"


class UnknownMetric(KeyError):
    """A figure no catalog entry declares; `str()` names the nearest declared names."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        nearest = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(nearest)}?" if nearest else ""
        super().__init__(
            f"figure {name!r} is not in the metric catalog.{hint} Declare it in bench/metrics.py "
            "(a harness figure) or in its suite's SuiteSpec.metrics"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class MetricCatalog:
    """Figures by name, in declaration order."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._by_name: dict[str, Metric] = {}
        for metric in metrics:
            known = self._by_name.get(metric.name)
            if known is not None and known != metric:
                raise ValueError(
                    f"figure {metric.name!r} is declared twice with different meanings: "
                    f"{known} and {metric}"
                )
            self._by_name[metric.name] = metric

    def get(self, name: str) -> Metric:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownMetric(name, self._by_name) from None

    def find(self, name: str) -> Metric | None:
        return self._by_name.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def names(self) -> list[str]:
        return list(self._by_name)

    def with_metrics(self, extra: Iterable[Metric]) -> MetricCatalog:
        """This catalog plus `extra` (a suite's own figures); a name declared again with another
        meaning raises."""
        return MetricCatalog([*self, *extra])

    def order(self, names: Iterable[str]) -> list[str]:
        """`names` in catalog order; names the catalog lacks last, as given."""
        given = list(dict.fromkeys(names))
        position = {name: i for i, name in enumerate(self._by_name)}
        return sorted(given, key=lambda n: (n not in position, position.get(n, 0)))

    def markdown_table(self) -> str:
        """The figure list of results/README.md, one row per figure (generated; see
        `bench list metrics --markdown`)."""
        rows = [
            "| figure | unit | better | kind | group | shown as | meaning |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in self:
            unit = m.unit or "-"
            shown = m.display.style if m.shape == "scalar" else m.shape
            rows.append(
                f"| `{m.name}` | {unit} | {m.direction} | {m.kind} | {m.group} | {shown} | "
                f"{m.description} |"
            )
        return "\n".join(rows)


HARNESS = MetricCatalog(HARNESS_METRICS)


def catalog_for(suite_metrics: Iterable[Metric] = ()) -> MetricCatalog:
    """The harness's figures plus a suite's own."""
    return HARNESS.with_metrics(suite_metrics)


def sampled_range(metric: Metric, metrics: Mapping[str, Any]) -> tuple[float, float] | None:
    """(lowest, highest) value of a timing over its stored raw samples (for a rate: 1 / the
    slowest and 1 / the fastest sample); None when the figure keeps no samples."""
    samples = metrics.get(metric.samples) if metric.samples else None
    if not (isinstance(samples, list) and samples and min(samples) > 0):
        return None
    if metric.inverse_samples:
        return 1.0 / max(samples), 1.0 / min(samples)
    return float(min(samples)), float(max(samples))
