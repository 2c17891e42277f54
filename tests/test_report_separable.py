"""Bold only what a paired test separates: records built here carry per-example predictions on one
500-example split, 3 seeds each. A planted 0.2-point gap (one more example right per seed) is not
bolded but marked as a tie; a 10-point gap is bold. A single seed at chance is marked even when
the mean is not at chance."""

from __future__ import annotations

import numpy as np
import pytest

from bench.predictions import encode
from bench.records import Record
from bench.report.frame import Runs
from bench.report.paired_table import paired_tables
from bench.report.table import render
from bench.report.tables import TIE_MARK, accuracy_tables
from models.errors import InputError

N, SPLIT = 500, "5e" * 32


def _records(model: str, correct_by_seed: list[np.ndarray], labels: np.ndarray) -> list[Record]:
    out = []
    for seed, correct in enumerate(correct_by_seed):
        predicted = np.where(correct, labels, (labels + 1) % 10)
        out.append(
            Record(
                run_id="r",
                suite="lra",
                task="listops",
                model=model,
                scale="tiny",
                seed=seed,
                status="ok",
                metrics={"accuracy": float(correct.mean()), "majority_accuracy": 0.2},
                data={"max_len": 128, "n_test": N},
                test_predictions=encode(SPLIT, predicted, labels),
            )
        )
    return out


def _table(gap_examples: int, collapse_seed: bool = False) -> dict[str, str]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, N)
    q = rng.beta(1.2, 1.8, N)  # example difficulty shared by both models: mean 40 %
    base = [rng.random(N) < q for _ in range(3)]
    better = [c.copy() for c in base]
    for c in better:
        c[np.flatnonzero(~c)[:gap_examples]] = True
    if collapse_seed:  # a seed at 19 %, below the 20 % majority rate
        better[1] = np.arange(N) < 95
    records = _records("a", better, labels) + _records("b", base, labels)
    (table,) = accuracy_tables(Runs(tuple(records), {"lra": ("listops",)}))
    text = render(table, "md")
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in text.splitlines()
        if line.startswith("| a ") or line.startswith("| b ")
    }
    return {**rows, "text": text}


def test_a_planted_small_gap_is_not_bold_but_a_tie() -> None:
    rows = _table(1)  # 1 of 500 examples: 0.2 points
    assert "**" not in rows["a"] and "<u>" not in rows["b"]
    assert rows["a"].endswith(TIE_MARK)
    assert "not separable from the runner-up" in rows["text"]
    assert "listops: a vs b, p=" in rows["text"] and "(paired bootstrap)" in rows["text"]
    assert "over 3 seeds" in rows["text"] and "Minimum detectable effect" in rows["text"]


def test_a_clear_gap_is_bold() -> None:
    rows = _table(50)  # 10 points
    assert rows["a"].startswith("**") and rows["b"].startswith("<u>")
    assert "not separable" not in rows["text"]


def test_a_single_seed_at_chance_is_marked() -> None:
    rows = _table(50, collapse_seed=True)
    assert "§" in rows["a"] and "§" not in rows["b"]
    assert "a on listops: 1 of 3 seeds" in rows["text"]


def test_vs_table_pairs_each_model_against_the_reference() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, N)
    base = [rng.random(N) < 0.4 for _ in range(3)]
    better = [c.copy() for c in base]
    for c in better:
        c[np.flatnonzero(~c)[:50]] = True
    runs = Runs(
        tuple(_records("a", better, labels) + _records("b", base, labels)), {"lra": ("listops",)}
    )
    (table,) = paired_tables(runs, "b")
    ((model, task, diff, p, p_holm, prob, seeds, test),) = [[c.text for c in r] for r in table.rows]
    assert (model, task, seeds, test) == ("a", "listops", "3/3", "paired bootstrap")
    assert diff.startswith("+10.00 [") and float(p) < 0.01 and p_holm == p and prob == "1.00"
    with pytest.raises(InputError, match="present: a, b"):
        paired_tables(runs, "c")
