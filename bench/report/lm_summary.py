"""What `bench run` prints when a language-modelling run ends: one row per cell with its test
figure (bits per byte for byte-level data, perplexity for word-level), the loss in nats, the
causality probe's verdict (a leaking model's figure is marked `LEAKS`: it saw later tokens, so it
is not comparable), token throughput and FLOPs per token; reasons follow the table once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from bench.records import Record
from bench.report.frame import model_label
from bench.report.summary import _key, fold_skipped, status_text
from bench.report.table import MISSING

LEAK_MARK = "LEAKS"
LEAK_NOTE = (
    "LEAKS: the causality probe saw an output at position t move when only tokens after t "
    "changed; the model saw the future, so its loss is not a language-modelling result and is "
    "never ranked."
)


def _number(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else MISSING


def headline(record: Record) -> tuple[str, str]:
    """(the name of the cell's test figure, its text) for an ok LM record."""
    m = record.metrics
    if "test_bits_per_byte" in m:
        return "bits/byte", _number(m["test_bits_per_byte"], ".4f")
    if "test_perplexity" in m:
        return "perplexity", _number(m["test_perplexity"], ".2f")
    return "", MISSING


def leaks(record: Record) -> bool:
    return record.status == "ok" and bool(record.metrics.get("causal_leak"))


def lm_summary(records: Sequence[Record]) -> str:
    """The LM run's end table: the headline figure (bits per byte or perplexity, marked when
    the model leaks), the causality verdict, throughput and FLOPs; skipped cells (data absent,
    no causal form) folded into one line per task and reason after it."""
    rows = []
    reasons: dict[str, str] = {}
    any_leak = False
    shown, skipped_lines = fold_skipped(records)
    for r in shown:
        m, ok = r.metrics, r.status == "ok"
        name, value = headline(r) if ok else ("", MISSING)
        value = f"{value} {name}".strip()
        if leaks(r):
            value, any_leak = f"{value} {LEAK_MARK}", True
        causal = MISSING
        if ok and "causal_leak" in m:
            causal = "no (leaks)" if m["causal_leak"] else "yes"
        elif ok and "causal_probe_error" in m:
            causal = "not judged"
        flops = m.get("flops_fwd_per_token")
        rows.append(
            [
                r.task,
                model_label(r),
                r.seed,
                status_text(r),
                value if ok else MISSING,
                _number(m.get("test_loss_nats"), ".4f"),
                causal,
                _number(m.get("train_tokens_per_s"), ".0f"),
                _number(flops / 1e3 if flops is not None else None, ".1f"),
                _key(r.reason or r.measurement_error, reasons),
            ]
        )
    headers = ["task", "model", "seed", "status", "test", "test loss nats", "causal"]
    headers += ["train tokens/s", "fwd kFLOP/token", "reason"]
    lines = [tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
    lines = lines if rows else []
    lines += [f"{key} {reason}" for reason, key in reasons.items()]
    lines += [LEAK_NOTE] if any_leak else []
    return "\n".join(lines + skipped_lines)
