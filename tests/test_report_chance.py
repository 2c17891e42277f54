"""Bold never goes to a chance-level score: accuracies within two binomial standard errors of
the majority-class rate are marked and left out of the ranking (hand derivation: p = 0.5 on
n = 2000 test examples, 2 sqrt(0.25 / 2000) = 0.0224, so 51.00 % is chance level, 55.00 % not)."""

from __future__ import annotations

from bench.records import Record
from bench.report.chance import CHANCE_NOTE, chance_level, noise_margin
from bench.report.frame import Runs
from bench.report.table import render
from bench.report.tables import accuracy_tables

SCORES = {"a": 0.50, "b": 0.50, "c": 0.51, "d": 0.55, "e": 0.60, "f": 0.40}


def _records(n_test: int | None = 2000) -> list[Record]:
    data = {"max_len": 1024, **({"n_test": n_test} if n_test else {})}
    return [
        Record(
            run_id="r",
            suite="lra",
            task="pathfinder",
            model=model,
            scale="tiny",
            seed=0,
            status="ok",
            metrics={"accuracy": acc, "majority_accuracy": 0.5},
            data=data,
        )
        for model, acc in SCORES.items()
    ]


def test_the_margin_is_two_binomial_standard_errors() -> None:
    assert abs(noise_margin(0.5, 2000) - 0.022360679) < 1e-8
    assert noise_margin(0.5, None) == 0.0


def test_chance_level_cells_are_marked_and_never_bold() -> None:
    records = _records()
    assert chance_level(records) == {("lra", "tiny", "pathfinder", m) for m in "abcf"}
    (table,) = accuracy_tables(Runs(tuple(records), {"lra": ("pathfinder",)}))
    text = render(table, "md")
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()[4:10]
    }
    # one seed, no predictions: the binomial interval, 2000 resamples (60 +- 1.96 * 1.10)
    assert rows["e"] == "**60.00 [57.90, 62.10]**" and rows["d"] == "<u>55.00 [52.85, 57.15]</u>"
    assert rows["a"] == rows["b"] == "50.00 [47.85, 52.20]°" and rows["c"].startswith("51.00 [")
    assert rows["c"].endswith("]°") and rows["f"].endswith("]°")
    averages = {
        line.split("|")[1].strip(): line.split("|")[3].strip() for line in text.splitlines()[4:10]
    }
    # a row at chance on every task is not ranked on its average either: e (60 %) is best
    assert averages["a"] == "50.00°" and averages["f"] == "40.00°"
    assert averages["e"] == "**60.00**" and averages["d"] == "<u>55.00</u>"
    assert CHANCE_NOTE in text
    assert r"50.00 [47.85, 52.20]$^\circ$" in render(table, "latex")


def test_without_the_test_size_only_scores_at_or_below_the_majority_rate_are_marked() -> None:
    assert chance_level(_records(None)) == {("lra", "tiny", "pathfinder", m) for m in "abf"}
