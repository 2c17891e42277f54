"""The language-modelling report tables on hand-made records: a leaking model is marked, never
ranked and never compared with a published figure; the published Transformer-XL figure and the
UoE abstract's LM claim are set beside ours with the differences computed by hand."""

from __future__ import annotations

from dataclasses import replace

from bench.metric_catalog import catalog_for
from bench.records import Record
from bench.report.frame import Runs
from bench.report.lm_tables import lm_tables
from bench.report.published_lm import transformer_xl_tables, uoe_lm_tables
from suites.lm.metrics import LM_METRICS
from suites.published import load_published

SEGMENTS = [3.0, 3.4, 2.8, 3.1, 3.3, 2.9, 3.2, 3.0]


def _record(
    model: str,
    ppl: float,
    leak: int,
    flops: float,
    seed: int = 0,
    shift: float = 0.0,
    task: str = "wikitext103",
) -> Record:
    segments = [x + shift * (1 + 0.3 * (i % 2)) + 0.01 * (i % 3) for i, x in enumerate(SEGMENTS)]
    return Record(
        run_id="r", suite="lm", task=task, model=model, scale="tiny", seed=seed,
        status="ok",
        metrics={"test_perplexity": ppl, "causal_leak": leak, "flops_fwd_per_token": flops,
                 "test_segment_loss_nats": segments},
        data={"eval_protocol": "non-overlapping segments of 64 tokens, no memory",
              "corpus": {"name": "wikitext-103", "test": {"sha256": "ab" * 32}}},
    )  # fmt: skip


RECORDS = (
    _record("full_attention", 30.0, 0, 1000.0),
    _record("full_attention", 32.0, 0, 1000.0, seed=1),
    _record("linformer", 10.0, 1, 800.0),
    _record("switch", 28.0, 0, 2000.0, shift=0.2),
    _record("uoe_causal", 27.0, 0, 1500.0),
    _record("uoe_paper", 5.0, 1, 1200.0),
)
RUNS = Runs(RECORDS, {"lm": ("stdlib", "wikitext103", "enwik8")}, catalog=catalog_for(LM_METRICS))


def test_lm_table_marks_a_leak_and_ranks_only_causal_models() -> None:
    (table,) = lm_tables(RUNS)
    rows = {row[0].text: row for row in table.rows}
    assert rows["full_attention"][1].text == "31"  # mean of the two seeds
    assert rows["linformer"][1].text == "10 §" and rows["uoe_paper"][1].text == "5 §"
    ranks = {m: row[1].rank for m, row in rows.items()}
    # lowest causal perplexity first: uoe_causal 27, switch 28; leaks (10, 5) are not ranked
    assert ranks == {
        "full_attention": 0, "linformer": 0, "switch": 2, "uoe_causal": 1, "uoe_paper": 0
    }  # fmt: skip
    assert any("linformer on wikitext103, uoe_paper on wikitext103" in n for n in table.notes)
    assert any("no memory" in n for n in table.notes)


def test_no_bold_best_when_the_paired_test_cannot_separate_the_two_lowest() -> None:
    records = (
        _record("switch", 28.0, 0, 1.0, task="enwik8"),
        _record("mixtral", 28.1, 0, 1.0, task="enwik8"),
    )
    # identical segment losses: p = 1, so the lower mean is marked, not bold
    runs = Runs(records, {"lm": ("enwik8",)}, catalog=catalog_for(LM_METRICS))
    (table,) = lm_tables(runs)
    rows = {row[0].text: row for row in table.rows}
    assert rows["switch"][1].text == "28 ≈" and rows["switch"][1].rank == 0
    assert rows["mixtral"][1].rank == 0
    assert any("switch vs mixtral on enwik8 (p = 1)" in n for n in table.notes)


def test_a_cell_the_probe_did_not_judge_is_marked_and_not_ranked() -> None:
    unjudged = _record("mixtral", 20.0, 0, 1.0)
    metrics = {k: v for k, v in unjudged.metrics.items() if k != "causal_leak"}
    records = (*RECORDS, replace(unjudged, metrics=metrics))
    (table,) = lm_tables(Runs(records, {}, catalog=catalog_for(LM_METRICS)))
    rows = {row[0].text: row for row in table.rows}
    assert rows["mixtral"][1].text == "20 °" and rows["mixtral"][1].value is None
    assert rows["uoe_causal"][1].rank == 1  # the lowest judged causal model
    assert any("did not judge" in n and "mixtral on wikitext103" in n for n in table.notes)


def test_transformer_xl_beside_ours_without_a_difference_for_a_leak() -> None:
    rows = [r for r in load_published() if r.source == "transformer-xl"]
    (table,) = transformer_xl_tables(RUNS, rows)
    body = {row[0].text: [c.text for c in row] for row in table.rows}
    assert body["full_attention"][3:] == ["31.00", "2", "24.03", "+6.97"]
    assert body["linformer"][3] == "10.00 §" and body["linformer"][6] == "n/a"
    assert any("no memory" in n.lower() for n in table.notes)
    assert any("recurrence" in n for n in table.notes)


def test_uoe_lm_claim_against_the_best_causal_moe() -> None:
    rows = [r for r in load_published() if r.source == "uoe-paper"]
    (table,) = uoe_lm_tables(RUNS, rows)
    body = {row[0].text: [c.text for c in row] for row in table.rows}
    # best causal MoE: switch (28); uoe_causal is 1.00 below it at 1500 / 2000 of its FLOPs
    row = ["uoe_causal", "27.00", "switch", "+1.00", ">= 2.38", "0.75", "0.76"]
    assert body["uoe_causal"] == row
    # a leaking UoE is shown marked, and the claim is not checked on it
    assert body["uoe_paper"][1] == "5.00 §" and body["uoe_paper"][3] == "n/a"


def test_the_lm_plot_draws_a_leak_hollow_and_says_so() -> None:
    from bench.report.plots_lm import LEAK_LABEL, lm_vs_flops

    ((stem, fig),) = lm_vs_flops(RUNS)
    assert stem == "lm_perplexity_vs_flops_lm_wikitext103_tiny"
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "linformer" + LEAK_LABEL in labels and "uoe_paper" + LEAK_LABEL in labels
    assert "switch" in labels and "switch" + LEAK_LABEL not in labels
    assert any("leaks the future" in t.get_text() for t in ax.texts)


def test_the_end_table_folds_skipped_cells_into_one_line_per_task_and_reason() -> None:
    from bench.report.lm_summary import lm_summary

    absent = "enwik8: enwik8 not found; fetch it with bench data download enwik8"
    skipped = [
        replace(_record(m, 0.0, 0, 0.0, task="enwik8"), status="skipped", reason=absent, metrics={})
        for m in ("full_attention", "switch", "uoe_paper")
    ]
    no_form = "linformer has no causal form: its keys are projected along the sequence"
    skipped.append(
        replace(_record("linformer", 0.0, 0, 0.0), status="skipped", reason=no_form, metrics={})
    )
    text = lm_summary([*RECORDS[:2], *skipped])
    lines = text.splitlines()
    assert (
        "enwik8: 3 cells skipped: enwik8 not found; fetch it with bench data download enwik8"
        in lines
    )
    assert f"wikitext103: 1 cell skipped: {no_form}" in lines
    table_rows = [
        line for line in lines if line.startswith("| wikitext103") or line.startswith("| enwik8")
    ]
    assert len(table_rows) == 2  # the two full_attention cells that ran; no skipped row
    assert (
        lm_summary(skipped).splitlines()[0].startswith("enwik8: 3 cells skipped")
    )  # no empty table
